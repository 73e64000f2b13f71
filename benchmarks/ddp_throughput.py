"""Training throughput of ``finetune`` in one process against several (``torchrun``, DistributedDataParallel
over gloo on CPU), side by side in one invocation.

    .venv/bin/python benchmarks/ddp_throughput.py                 # FiNER-ORD, 1 epoch, the packaged teacher
    .venv/bin/python benchmarks/ddp_throughput.py --max_sentences 400 --layouts 1x2,2x1

A layout ``PxT`` is P processes with T torch threads each. Every layout trains the same optimizer steps on
the same global batch (``--batch_size`` split evenly over the processes), so the samples per second of the
Trainer (``train_samples_per_second``: all processes together) compare like with like; validation F1 is
reported to show the layouts train to a comparable model (DDP changes the order in which sentences meet
and the arithmetic of the averaged gradients, so the F1s agree closely, not exactly). Runs are logged to
experiment ``ddp-throughput`` of ``MLFLOW_TRACKING_URI`` (default ``sqlite:///benchmarks/results/ddp.db``).
Output: ``benchmarks/results/ddp_throughput.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
FINER = REPO.parent / "shared" / "data" / "finer-ord"
EXPERIMENT = "ddp-throughput"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_layout(layout: str, args: argparse.Namespace, env: dict[str, str]) -> dict:
    """Train once in ``layout`` (``PxT``); return its figures, read back from its MLflow run."""
    from mlflow.tracking import MlflowClient

    processes, threads = (int(n) for n in layout.split("x"))
    if args.batch_size % processes:
        raise SystemExit(f"--batch_size {args.batch_size} does not split evenly over {processes} processes")
    params = {"model": args.model, "data": args.data, "max_sentences": str(args.max_sentences),
              "epochs": str(args.epochs), "batch_size": str(args.batch_size // processes), "max_length": "128",
              "device": "cpu", "measure_resources": "false", "eval_split": "validation",
              "checkpoint_dir": tempfile.mkdtemp(prefix=f"ddp-{layout}-")}  # deleted by the stage when it ends
    argv = ["-m", "findistill", "finetune", *[p for k, v in params.items() for p in (f"--{k}", v)]]
    if processes > 1:
        argv = ["-m", "torch.distributed.run", "--nproc_per_node", str(processes), "--master_port",
                str(_free_port()), *argv]
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *argv], env={**env, "OMP_NUM_THREADS": str(threads)}, cwd=REPO,
                          capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"layout {layout} failed:\n{done.stderr[-3000:]}")
    client = MlflowClient()
    experiment = client.get_experiment_by_name(EXPERIMENT)
    run = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"], max_results=1)[0]
    m = run.data.metrics
    return {"layout": layout, "processes": processes, "threads_per_process": threads, "run_id": run.info.run_id,
            "train_steps": int(m["train_steps"]), "train_seconds": m["train_seconds"],
            "train_samples_per_second": m["train_samples_per_second"], "validation_f1": m["validation_f1"],
            "wall_seconds": wall}


def table(rows: list[dict], base: str) -> str:
    reference = next(r for r in rows if r["layout"] == base)["train_samples_per_second"]
    lines = [f"| layout | processes x threads | steps | train s | samples/s | vs {base} | validation F1 | wall s |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['layout']} | {r['processes']} x {r['threads_per_process']} | {r['train_steps']} | "
                     f"{r['train_seconds']:.0f} | {r['train_samples_per_second']:.1f} | "
                     f"{r['train_samples_per_second'] / reference:.2f}x | {r['validation_f1']:.4f} | "
                     f"{r['wall_seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(FINER))
    parser.add_argument("--model", default="packaged:all-MiniLM-L6-v2")
    parser.add_argument("--max_sentences", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch_size", type=int, default=16, help="the global batch (split over the processes)")
    parser.add_argument("--layouts", default="1x2,2x1,1x1")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{RESULTS / 'ddp.db'}")
    env = {**os.environ, "MLFLOW_EXPERIMENT_NAME": EXPERIMENT, "TOKENIZERS_PARALLELISM": "false"}
    import mlflow

    mlflow.set_experiment(EXPERIMENT)  # made here, once, before the runs
    rows = []
    for layout in args.layouts.split(","):
        print(f"training in layout {layout} ...", flush=True)
        rows.append(run_layout(layout.strip(), args, env))
        print(f"  {rows[-1]['train_samples_per_second']:.1f} samples/s", flush=True)
    report = table(rows, rows[0]["layout"])
    payload = {"data": args.data, "model": args.model, "epochs": args.epochs, "global_batch": args.batch_size,
               "cpu_count": os.cpu_count(), "rows": rows}
    (RESULTS / "ddp_throughput.json").write_text(json.dumps(payload, indent=2) + "\n")
    (RESULTS / "ddp_throughput.md").write_text(f"# finetune throughput: processes x threads ({Path(args.data).name}, "
                                               f"{args.epochs} epoch, global batch {args.batch_size})\n\n{report}")
    print(report)


if __name__ == "__main__":
    main()
