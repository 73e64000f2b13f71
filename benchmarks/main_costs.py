"""Does ``main``'s cost comparison agree with an independent side-by-side measurement?

    .venv/bin/python benchmarks/main_costs.py                  # the newest main run of experiment findistill-demo
    .venv/bin/python benchmarks/main_costs.py --run <main run id>

``main`` measures its teacher and student one after the other in one fresh process after both
exist (``teacher_*``/``student_*`` metrics, ``speedup_cpu_b1``, ``pipeline.md``). This script loads the
same two logged models and measures them again with ``benchmarks/distill.py``'s measurement (another
fresh process, three alternating rounds, on the test sentences of the same data), then compares the
ratios. Run it on an
otherwise idle machine. Output: ``benchmarks/results/main_costs.{json,md}`` (store:
``MLFLOW_TRACKING_URI``, default ``sqlite:///mlflow.db``, the store ``make demo`` writes).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from distill import RESULTS, measure_costs  # the sibling benchmark's side-by-side measurement

REPO = Path(__file__).resolve().parents[1]
#: (metric, how the student compares): the ratios both measurements report
RATIOS = (("latency_cpu_b1_ms_p50", "speed-up at batch 1 (teacher / student latency)"),
          ("latency_cpu_b32_ms_p50", "speed-up at batch 32 (teacher / student latency)"),
          ("params_total", "parameters (student / teacher)"))


def main_run(run_id: str | None, experiment: str):
    import mlflow

    if run_id:
        return mlflow.get_run(run_id)
    found = mlflow.search_runs(experiment_names=[experiment], filter_string="tags.`findistill.stage` = 'main' "
                               "and attributes.status = 'FINISHED'", order_by=["attributes.end_time DESC"],
                               max_results=1, output_format="list")
    if not found:
        raise SystemExit(f"no finished main run in experiment {experiment!r} of {mlflow.get_tracking_uri()}; "
                         "run `make demo` first or give --run")
    return found[0]


def ratio(metric: str, teacher: float, student: float) -> float:
    return student / teacher if metric == "params_total" else teacher / student


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", help="a main run id (default: the newest finished one of --experiment)")
    parser.add_argument("--experiment", default="findistill-demo")
    parser.add_argument("--sentences", type=int, default=256, help="test sentences to measure on")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{REPO / 'mlflow.db'}")
    run = main_run(args.run, args.experiment)
    tags, metrics = run.data.tags, run.data.metrics
    teacher, student = tags.get("findistill.step.finetune-teacher"), tags.get("findistill.step.distill-student")
    if not (teacher and student and "teacher_latency_cpu_b1_ms_p50" in metrics):
        raise SystemExit(f"main run {run.info.run_id} has no fine-tuned teacher, distilled student or measured costs")
    from findistill.tracking.runs import localize

    data = localize(f"runs:/{tags['findistill.step.prepare']}/data")  # the split files main prepared
    costs = measure_costs("main", {"teacher": f"runs:/{teacher}/model", "student": f"runs:/{student}/model"},
                          args.sentences, data=data)
    rows = []
    for metric, meaning in RATIOS:
        in_main = ratio(metric, metrics[f"teacher_{metric}"], metrics[f"student_{metric}"])
        here = ratio(metric, costs["teacher"][metric], costs["student"][metric])
        rows.append({"metric": metric, "meaning": meaning, "main": in_main, "benchmark": here,
                     "difference": here / in_main - 1})
    result = {"main_run": run.info.run_id, "teacher_run": teacher, "student_run": student,
              "sentences": args.sentences, "ratios": rows, "benchmark_costs": costs}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "main_costs.json").write_text(json.dumps(result, indent=1))
    lines = [f"main run `{run.info.run_id}` (teacher `{teacher}`, student `{student}`): the ratios `main` logged "
             "(one fresh process, after both models exist) against `benchmarks/distill.py`'s side-by-side "
             f"measurement, run later in another fresh process (first {args.sentences} test sentences).", "",
             "| ratio | main | benchmark | difference |", "|---|---:|---:|---:|"]
    lines += [f"| {r['meaning']} | {r['main']:.2f} | {r['benchmark']:.2f} | {r['difference']:+.1%} |" for r in rows]
    (RESULTS / "main_costs.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
