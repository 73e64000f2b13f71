"""Stage-order benchmark: ``main`` with each strategy on the financial corpora, one command.

    .venv/bin/python benchmarks/strategies.py --workers 2        # both corpora at once (one thread each)
    .venv/bin/python benchmarks/strategies.py --collect-only     # tables from the finished runs

Per corpus (experiment ``<prefix><corpus>``), every strategy x seed is one ``mlflow run . -e main``
with general text WikiGold; the strategies of a corpus run one after the other so that the stage
cache shares their common steps (tokenizer, fine-tuned teacher, adapted student). Each ``main`` run
is found again by its cache key (its parameters, input files and code version; ``stage_runs.py``):
a finished one is not run again, and one left RUNNING by a process that died is marked FAILED and
run again. Afterwards each student and teacher is measured
side by side in this one process (``distill.measure_costs``, cached in ``distill-costs.json``;
one model per size: students of the same depth and vocabulary share one measurement).
Output: ``benchmarks/results/strategies.{json,md}`` (store: ``MLFLOW_TRACKING_URI``, default
``sqlite:///benchmarks/results/strategies.db``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from distill import RESULTS, SHARED, measure_costs, mlflow_run  # noqa: E402  (the sibling benchmark)
from stage_runs import finished_run, stage_key

# absolute paths: the cache key fingerprints the files a local path names
CORPORA = {"finer-ord": str(SHARED / "finer-ord"), "sec-filings": str(SHARED / "sec-filings")}
GENERAL_DATA = str(SHARED / "wikigold")
STRATEGIES = ("finetune-distill", "adapt-finetune-distill", "distill-adapt-distill", "distill-adapt-finetune")
BUDGET = {"epochs": "6", "batch_size": "16", "learning_rate": "1e-4", "patience": "2", "student_epochs": "6",
          "student_learning_rate": "2e-4", "adapt_epochs": "2", "general_epochs": "2", "student_layers": "3",
          "tokenizer_method": "trim", "tokenizer_vocab_size": "16000"}


def _mlflow():
    import mlflow

    return mlflow


def main_params(corpus: str, strategy: str, seed: int) -> dict[str, str]:
    """The ``main`` parameters of one (corpus, strategy, seed)."""
    return {**BUDGET, "strategy": strategy, "data": CORPORA[corpus], "seed": str(seed), "general_data": GENERAL_DATA}


def finished_main(experiment: str, corpus: str, strategy: str, seed: int):
    """The newest FINISHED ``main`` run of ``experiment`` with the cache key of (corpus, strategy, seed) under
    the current code, or None."""
    return finished_run(experiment, stage_key("main", main_params(corpus, strategy, seed)))


def run_corpus(corpus: str, experiment: str, seeds: list[int], threads: int | None) -> None:
    """Every strategy x seed of one corpus, in order (later strategies reuse earlier steps)."""
    for seed in seeds:
        for strategy in STRATEGIES:
            try:
                mlflow_run("main", experiment, f"main-{strategy}-s{seed}", main_params(corpus, strategy, seed),
                           threads)
            except RuntimeError as err:  # the other strategies still run
                print(f"[failed] {experiment} {strategy} seed {seed}: {err}", flush=True)


def collect(corpus: str, experiment: str, seeds: list[int], skip_costs: bool) -> dict:
    """Per strategy: test F1 per seed, the steps' runs; costs of the seed-``seeds[0]`` student and teacher."""
    mlflow = _mlflow()
    rows: dict[str, dict] = {}
    models: dict[str, str] = {}
    for strategy in STRATEGIES:
        per_seed = {}
        for seed in seeds:
            run = finished_main(experiment, corpus, strategy, seed)
            if run is None:
                continue
            steps = mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/pipeline.json")
            ids = {s["step"]: s["run_id"] for s in steps}
            infos = [mlflow.get_run(run_id).info for run_id in ids.values()]
            per_seed[seed] = {"main_run": run.info.run_id, "metrics": run.data.metrics, "steps": ids,
                              "seconds": sum((i.end_time - i.start_time) / 1000 for i in infos)}
        if not per_seed:
            continue
        f1 = {seed: r["metrics"]["student_test_f1"] for seed, r in per_seed.items()}
        first = per_seed[min(per_seed, key=seeds.index)]
        student = first["steps"].get("distill-student") or first["steps"].get("finetune-student")
        models[strategy] = f"runs:/{student}/model"
        if "finetune-teacher" in first["steps"]:
            teacher_run = first["steps"]["finetune-teacher"]
            models[f"teacher:{'adapted' if 'adapt-teacher' in first['steps'] else 'general'}"] = \
                f"runs:/{teacher_run}/model"
        rows[strategy] = {"test_f1": f1, "f1_mean": float(np.mean(list(f1.values()))),
                          "f1_sd": float(np.std(list(f1.values()))), "runs": per_seed}
    per_seed_teachers: dict[str, dict[int, float]] = {"general": {}, "adapted": {}}
    for row in rows.values():  # every seed's teacher: fine-tuned T0, or adapted T0 fine-tuned
        for seed, r in row["runs"].items():
            if "finetune-teacher" in r["steps"]:
                kind = "adapted" if "adapt-teacher" in r["steps"] else "general"
                per_seed_teachers[kind][seed] = r["metrics"]["teacher_test_f1"]
    teachers = {kind: float(np.mean(list(f1.values()))) for kind, f1 in per_seed_teachers.items() if f1}
    # one measurement per architecture: students of equal size share their costs (the teacher too)
    representative: dict[float, str] = {}
    for strategy, row in rows.items():
        size = next(iter(row["runs"].values()))["metrics"].get("student_params_total", 0.0)
        representative.setdefault(size, strategy)
        row["measured_as"] = representative[size]
    to_measure = {k: v for k, v in models.items() if k.startswith("teacher:general") or k in representative.values()}
    costs = {} if skip_costs or not models else measure_costs(corpus, to_measure)
    for strategy, row in rows.items():
        if row["measured_as"] in costs:
            costs.setdefault(strategy, costs[row["measured_as"]])
    general_teacher = costs.get("teacher:general", {})
    for strategy, row in rows.items():
        cost = costs.get(strategy)
        if cost:
            row["cost"] = cost
            if general_teacher:
                row["params_ratio"] = cost["params_total"] / general_teacher["params_total"]
                row["speedup_b1"] = general_teacher["latency_cpu_b1_ms_p50"] / cost["latency_cpu_b1_ms_p50"]
        if teachers.get("general"):
            row["f1_ratio"] = row["f1_mean"] / teachers["general"]
    return {"corpus": corpus, "experiment": experiment, "teachers_test_f1": teachers,
            "teachers_test_f1_per_seed": per_seed_teachers, "strategies": rows,
            "teacher_costs": {k: v for k, v in costs.items() if k.startswith("teacher:")}}


def markdown(results: list[dict], seeds: list[int]) -> str:
    budget = ", ".join(f"{k}={v}" for k, v in BUDGET.items())
    lines = [f"`main` per strategy, general text WikiGold; seeds {', '.join(map(str, seeds))}; {budget}.", ""]
    for result in results:
        t, per_seed = result["teachers_test_f1"], result["teachers_test_f1_per_seed"]

        def seeds_of(kind: str) -> str:
            return f"{t[kind]:.4f}" + (f" ({', '.join(f'{v:.4f}' for v in per_seed[kind].values())})"
                                        if len(per_seed[kind]) > 1 else "")

        tc = result["teacher_costs"].get("teacher:general", {})
        lines += [f"### {result['corpus']}", "",
                  f"Teacher test F1 (mean over seeds): general (fine-tuned all-MiniLM-L6-v2) {seeds_of('general')}"
                  + (f", domain-adapted then fine-tuned {seeds_of('adapted')}" if t.get("adapted") else "")
                  + (f"; {tc['params_total'] / 1e6:.2f}M params, CPU b1 p50 {tc['latency_cpu_b1_ms_p50']:.1f} ms"
                     if tc else "") + ".", "",
                  "| strategy | student test F1 (per seed) | vs general teacher (mean) | params | vs teacher | "
                  "size MB | CPU b1 p50 ms | speed-up b1 | CPU b32 p50 ms | chain minutes |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for strategy, row in result["strategies"].items():
            seeds_text = ", ".join(f"{v:.4f}" for v in row["test_f1"].values())
            mean = f"{row['f1_mean']:.4f} ± {row['f1_sd']:.4f} ({seeds_text})" if len(row["test_f1"]) > 1 \
                else seeds_text
            cost = row.get("cost")
            cells = ["–"] * 6
            if cost:
                cells = [f"{cost['params_total'] / 1e6:.2f}M", f"{row.get('params_ratio', float('nan')):.0%}",
                         f"{cost['model_size_mb']:.1f}", f"{cost['latency_cpu_b1_ms_p50']:.1f}",
                         f"{row.get('speedup_b1', float('nan')):.1f}x", f"{cost['latency_cpu_b32_ms_p50']:.0f}"]
            minutes = next(iter(row["runs"].values()))["seconds"] / 60
            lines.append(f"| {strategy} | {mean} | {row.get('f1_ratio', float('nan')):.1%} | " + " | ".join(cells)
                         + f" | {minutes:.0f} |")
        lines += ["", "Chain minutes: the durations of all the step runs of the chain added up, as if it ran "
                      "alone (steps shared with an earlier strategy were computed once and reused); the runs "
                      "trained with 1 thread while 2-3 others shared the 2 cores. Costs measured side by side in "
                      "one process, once per model size.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpora", default=",".join(CORPORA))
    parser.add_argument("--seeds", default="42")
    parser.add_argument("--experiment-prefix", default="strategies-")
    parser.add_argument("--workers", type=int, default=1, help="corpora run at once (each gets 2/workers threads)")
    parser.add_argument("--collect-only", action="store_true")
    parser.add_argument("--skip-costs", action="store_true")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{RESULTS / 'strategies.db'}")
    corpora = [c for c in args.corpora.split(",") if c]
    seeds = [int(s) for s in args.seeds.split(",")]
    if not args.collect_only:
        threads = max(1, 2 // args.workers) if args.workers > 1 else None
        with ThreadPoolExecutor(args.workers) as pool:
            list(pool.map(lambda c: run_corpus(c, args.experiment_prefix + c, seeds, threads), corpora))
    results = [collect(c, args.experiment_prefix + c, seeds, args.skip_costs) for c in corpora]
    (RESULTS / "strategies.json").write_text(json.dumps(results, indent=1, default=str))
    table = markdown(results, seeds)
    (RESULTS / "strategies.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
