"""Teacher baseline: fine-tune the packaged teacher on the shared financial corpora and tabulate.

    .venv/bin/python benchmarks/teacher.py                     # run + table (about 25 min on 2 cores)
    .venv/bin/python benchmarks/teacher.py --collect-only      # table from runs already in the store

Each corpus x seed is fine-tuned through ``mlflow run . -e finetune`` (experiment ``teacher-<corpus>``,
run ``teacher-s<seed>``) in the tracking store of ``MLFLOW_TRACKING_URI`` (default
``sqlite:///benchmarks/results/mlflow.db``); the table is written to ``benchmarks/results/teacher.{json,md}``.
Runs are found again by their stage cache key (parameters, input files, code version; ``stage_runs.py``):
a finished one is not run again, one left RUNNING by a process that died is marked FAILED and run
again, and the table holds exactly the runs of the requested seeds and settings. Every number in it
is read back from the MLflow runs, so the table and the UI cannot disagree.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stage_runs import finished_run, launch, stage_key, wait_while_running  # the sibling module

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
CORPORA = {
    "finer-ord": "train.conll → train/validation (seeded 10%); validation.conll → test (402 sentences)",
    "sec-filings": "FIN5 → train/validation (seeded 10%); FIN3 → test (303 sentences)",
}
COLUMNS = [
    ("test_f1", "test F1", "{:.4f}"), ("test_precision", "P", "{:.4f}"), ("test_recall", "R", "{:.4f}"),
    ("best_val_f1", "val F1", "{:.4f}"), ("best_epoch", "best epoch", "{:.0f}"),
    ("params_total", "params", "{:,.0f}"), ("model_size_mb", "size MB", "{:.1f}"),
    ("latency_cpu_b1_ms_p50", "CPU b1 p50 ms", "{:.1f}"), ("latency_cpu_b32_ms_p50", "CPU b32 p50 ms", "{:.0f}"),
    ("throughput_cpu_words_per_s", "words/s", "{:,.0f}"), ("train_seconds", "train s", "{:.0f}"),
]
SUMMARY = ["test_f1", "test_precision", "test_recall", "best_val_f1"]


def finetune_params(corpus: str, seed: int, settings: dict[str, str]) -> dict[str, str]:
    return {"data": str(REPO.parent / "shared" / "data" / corpus), "seed": str(seed), **settings}


def run_finetune(corpus: str, seed: int, settings: dict[str, str]) -> str:
    """The finished ``finetune`` run of (corpus, seed, settings): an earlier one with the same cache key, else
    one run now (output to this terminal); returns its id."""
    experiment, params = f"teacher-{corpus}", finetune_params(corpus, seed, settings)
    key = stage_key("finetune", params)
    wait_while_running(experiment, key)
    done = finished_run(experiment, key)
    if done is not None:
        print(f"[reuse] {experiment} seed {seed}: {done.info.run_id}", flush=True)
        return done.info.run_id
    return launch("finetune", experiment, f"teacher-s{seed}", params, key)


def collect(seeds: list[int], settings: dict[str, str]) -> list[dict]:
    """One row per corpus x seed with a finished run of these settings under the current code."""
    rows = []
    for corpus in CORPORA:
        for seed in seeds:
            run = finished_run(f"teacher-{corpus}", stage_key("finetune", finetune_params(corpus, seed, settings)))
            if run is None:
                print(f"[missing] teacher-{corpus} seed {seed}: no finished run with these settings", flush=True)
                continue
            params = run.data.params
            row = {"corpus": corpus, "run_id": run.info.run_id, "seed": params.get("seed"),
                   "epochs": params.get("epochs"), "learning_rate": params.get("learning_rate")}
            row.update(run.data.metrics)
            rows.append(row)
    return rows


def per_type(row: dict) -> str:
    types = sorted(k.removeprefix("test_f1_") for k in row if k.startswith("test_f1_") and k != "test_f1_macro")
    return ", ".join(f"{t} {row[f'test_f1_{t}']:.3f} (n={row.get(f'test_support_{t}', 0):.0f})" for t in types)


def markdown(rows: list[dict]) -> str:
    lines = ["| corpus | seed | " + " | ".join(title for _, title, _ in COLUMNS) + " |",
             "|---|---|" + "---:|" * len(COLUMNS)]
    for row in rows:
        cells = [fmt.format(row[key]) if isinstance(row.get(key), (int, float)) else "–" for key, _, fmt in COLUMNS]
        lines.append(f"| {row['corpus']} | {row['seed']} | " + " | ".join(cells) + " |")
    lines += ["", "Mean ± standard deviation over seeds:", ""]
    for corpus in CORPORA:
        group = [row for row in rows if row["corpus"] == corpus]
        if group:
            stats = [f"{key} {np.mean([r[key] for r in group]):.4f} ± {np.std([r[key] for r in group]):.4f}"
                     for key in SUMMARY]
            lines.append(f"- {corpus} ({len(group)} seeds): " + ", ".join(stats))
    lines += ["", "Per-type test F1:", ""]
    lines += [f"- {row['corpus']} (seed {row['seed']}): {per_type(row)}" for row in rows]
    lines += ["", "Splits:", ""] + [f"- {c}: {text}" for c, text in CORPORA.items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collect-only", action="store_true", help="only tabulate runs already in the store")
    parser.add_argument("--seeds", default="42", help="comma-separated seeds (default 42)")
    parser.add_argument("--epochs", default="6")
    parser.add_argument("--learning-rate", default="1e-4")
    parser.add_argument("--patience", default="2")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{RESULTS / 'mlflow.db'}")
    seeds = [int(s) for s in args.seeds.split(",")]
    settings = {"epochs": args.epochs, "learning_rate": args.learning_rate, "patience": args.patience}
    if not args.collect_only:
        for corpus in CORPORA:
            for seed in seeds:
                run_finetune(corpus, seed, settings)
    rows = collect(seeds, settings)
    (RESULTS / "teacher.json").write_text(json.dumps(rows, indent=2, default=str))
    table = markdown(rows)
    (RESULTS / "teacher.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
