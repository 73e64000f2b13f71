"""Runs that a dead process left RUNNING are found and marked KILLED; live, foreign and untagged ones are not."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import mlflow
from conftest import REPO
from mlflow.tracking import MlflowClient

from findistill.cli import main as cli_main
from findistill.tracking.stale import HOST_TAG, PID_TAG, STARTED_TAG, mark_stale_runs, owner_tags


def _dead_pid() -> int:
    """The id of a process that has ended."""
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    return done.pid


def _running(tags: dict[str, str]) -> str:
    """A RUNNING run of the Default experiment with ``tags``, as a process leaves it when it dies."""
    return MlflowClient().create_run("0", tags=tags).info.run_id


def test_only_runs_of_dead_processes_on_this_host_are_marked_killed(mlflow_store, capsys):
    me = owner_tags()
    dead = _running({HOST_TAG: socket.gethostname(), PID_TAG: str(_dead_pid()), STARTED_TAG: "1.00"})
    reused = _running({**me, STARTED_TAG: f"{float(me[STARTED_TAG]) - 3600:.2f}"})  # our id, an older process
    alive = _running(me)
    foreign = _running({HOST_TAG: "another-host", PID_TAG: "1", STARTED_TAG: "1.00"})
    untagged = _running({})

    preview = mark_stale_runs(["0"], dry_run=True)
    assert sorted(preview.killed) == sorted([dead, reused]) and sorted(preview.unknown) == sorted([foreign, untagged])
    assert MlflowClient().get_run(dead).info.status == "RUNNING"  # a dry run changes nothing

    assert cli_main(["gc", "--experiments", "Default"]) == 0
    out = capsys.readouterr().out
    assert "marked 2 run(s) KILLED" in out and "2 RUNNING run(s) belong to another host" in out
    status = {run_id: MlflowClient().get_run(run_id).info.status for run_id in (dead, reused, alive, foreign,
                                                                                 untagged)}
    assert status == {dead: "KILLED", reused: "KILLED", alive: "RUNNING", foreign: "RUNNING", untagged: "RUNNING"}
    assert "ended without finishing the run" in MlflowClient().get_run(dead).data.tags["findistill.fail_reason"]


def test_gc_refuses_unknown_experiments_and_parameters(mlflow_store, capsys):
    assert cli_main(["gc", "--experiments", "nope"]) == 2
    assert "no experiment 'nope'" in capsys.readouterr().err
    assert cli_main(["gc", "--older_than", "3"]) == 2
    assert "takes --experiments and --dry_run" in capsys.readouterr().err


def test_a_stage_killed_with_sigkill_is_found_by_gc(mlflow_store, tiny_encoder_dir, capsys):
    stage = subprocess.Popen(
        [sys.executable, "-m", "findistill.cli", "finetune", "--model", str(tiny_encoder_dir), "--data", "sample",
         "--max_sentences", "40", "--epochs", "200", "--batch_size", "4", "--max_length", "32", "--device", "cpu",
         "--measure_resources", "false"],
        cwd=os.getcwd(), env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        deadline, runs = time.monotonic() + 180, []
        while not runs:  # the stage has opened its run and named itself its owner
            assert stage.poll() is None and time.monotonic() < deadline, "the stage ended or never opened its run"
            time.sleep(1)
            runs = mlflow.search_runs(search_all_experiments=True, output_format="list",
                                      filter_string="attributes.status = 'RUNNING'")
            runs = [r for r in runs if r.data.tags.get(PID_TAG) == str(stage.pid)]
    finally:
        stage.send_signal(signal.SIGKILL)
        stage.wait()
    assert MlflowClient().get_run(runs[0].info.run_id).info.status == "RUNNING"  # nobody ended it
    assert cli_main(["gc"]) == 0
    assert MlflowClient().get_run(runs[0].info.run_id).info.status == "KILLED"
    assert f"its process {stage.pid}" in MlflowClient().get_run(runs[0].info.run_id).data.tags[
        "findistill.fail_reason"]
