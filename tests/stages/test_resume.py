"""A ``finetune`` run killed with SIGKILL mid-epoch resumes, when the same command runs again, to the very
model an uninterrupted run trains; the killed run is then found and marked KILLED."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from mlflow.tracking import MlflowClient
from safetensors.torch import load_file

#: the stage, killed by SIGKILL right after the checkpoint of step KILL_AT has been written in full
KILLED = """
import os, signal, sys
from transformers import TrainerCallback
import findistill.training.trainer as trainer

class KillAfterCheckpoint(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        if state.global_step == int(os.environ["KILL_AT"]):
            os.kill(os.getpid(), signal.SIGKILL)

plain = trainer.trainer_callbacks
trainer.trainer_callbacks = lambda *a, **k: plain(*a, **k) + [KillAfterCheckpoint()]
from findistill.cli import main
sys.exit(main(sys.argv[1:]))
"""
#: the sample's 335 training sentences (some cut in two at max_length 64) make 23 steps per epoch at batch 16: step 30
#: is in the middle of epoch 2, whose batch order a resumed run must draw as the uninterrupted run did
KILL_AT = 30


def _finetune(prefix: list[str], params: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    argv = ["finetune"] + [part for k, v in params.items() for part in (f"--{k}", v)]
    env = {**os.environ, "KILL_AT": str(KILL_AT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *prefix, *argv], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


def _weights(client: MlflowClient, run_id: str, into: Path) -> dict:
    folder = Path(client.download_artifacts(run_id, "model", str(into)))
    return load_file(next(folder.rglob("model.safetensors")))


def test_a_killed_finetune_resumes_to_the_uninterrupted_result(mlflow_store, tiny_encoder_dir, tmp_path):
    params = {"model": str(tiny_encoder_dir), "data": "sample", "epochs": "2", "batch_size": "16",
              "max_length": "64", "device": "cpu", "measure_resources": "false", "checkpoint_steps": "5",
              "seed": "7"}
    client = MlflowClient()

    killed = _finetune(["-c", KILLED], params, tmp_path)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    checkpoints = {p.name for p in (tmp_path / ".findistill" / "checkpoints").glob("finetune-*/checkpoint-*")}
    assert {"checkpoint-23", "checkpoint-25", "checkpoint-30"} <= checkpoints  # epoch 1's end, then every 5 steps

    resumed = _finetune(["-m", "findistill"], params, tmp_path)  # the same command again
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed from checkpoint" in resumed.stdout and f"checkpoint-{KILL_AT}" in resumed.stdout

    fresh = _finetune(["-m", "findistill"], {**params, "checkpoint_dir": str(tmp_path / "fresh")}, tmp_path)
    assert fresh.returncode == 0, fresh.stderr[-2000:]

    by_time = sorted(client.search_runs([e.experiment_id for e in client.search_experiments()]),
                     key=lambda r: r.info.start_time)
    assert [r.info.status for r in by_time] == ["RUNNING", "FINISHED", "FINISHED"]  # the killed one is left RUNNING
    first, second, third = by_time
    assert second.data.tags["findistill.resumed_from"].endswith(f"checkpoint-{KILL_AT}")
    assert "findistill.resumed_from" not in third.data.tags

    # the resumed training took the same steps over the same batches: the same weights, bit for bit
    a, b = _weights(client, second.info.run_id, tmp_path / "a"), _weights(client, third.info.run_id, tmp_path / "b")
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    for key in ("test_f1", "test_precision", "best_val_f1", "best_epoch", "train_steps"):
        assert second.data.metrics[key] == third.data.metrics[key], key
    history = {run: [(m.step, m.value) for k in ("val_loss", "val_f1")
                     for m in client.get_metric_history(run.info.run_id, k)] for run in (second, third)}
    assert len(history[second]) == 4 and history[second] == history[third]
    # train_loss is an epoch's mean over the steps the process trained: the interrupted epoch's value covers the
    # steps after the resume only; the epoch before, replayed from the checkpoint's log, is the same
    losses = {run: dict((m.step, m.value) for m in client.get_metric_history(run.info.run_id, "train_loss"))
              for run in (second, third)}
    assert losses[second][1] == losses[third][1]

    swept = subprocess.run([sys.executable, "-m", "findistill", "gc"], capture_output=True, text=True, timeout=300)
    assert swept.returncode == 0 and first.info.run_id in swept.stdout
    assert client.get_run(first.info.run_id).info.status == "KILLED"
