"""benchmarks/stage_runs.py: benchmark runs found by their stage cache key, never waited for forever."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading

import pytest
from conftest import load_benchmark


@pytest.fixture(scope="module")
def stage_runs():
    return load_benchmark("stage_runs")


def _run(experiment_id: str, key: str | None, status: str = "RUNNING", name: str = "s3-dom-kd-s42",
         tags: dict[str, str] | None = None) -> str:
    from mlflow.tracking import MlflowClient

    from findistill.stages.pipeline import CACHE_TAG

    client = MlflowClient()
    run_id = client.create_run(experiment_id, run_name=name,
                               tags={**({CACHE_TAG: key} if key else {}), **(tags or {})}).info.run_id
    if status != "RUNNING":
        client.set_terminated(run_id, status)
    return run_id


def _status(run_id: str) -> str:
    import mlflow

    return mlflow.get_run(run_id).info.status


def _sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])


def test_stage_key_is_mains_cache_key(stage_runs, tmp_path):
    from findistill.config import parse_params
    from findistill.stages import finetune
    from findistill.stages.pipeline import cache_key, code_version

    data = tmp_path / "train.conll"
    data.write_text("Acme B-ORG\n")
    params = {"data": str(data), "seed": "42", "epochs": "6"}
    key = stage_runs.stage_key("finetune", params)
    assert key == cache_key("finetune", parse_params(finetune.Config, params), code_version())
    assert stage_runs.stage_key("finetune", {**params, "patience": str(finetune.Config.patience)}) == key
    assert stage_runs.stage_key("finetune", {**params, "seed": "1"}) != key
    data.write_text("Acme B-ORG\nCorp I-ORG\n")  # the same path with other contents
    assert stage_runs.stage_key("finetune", params) != key


def test_finished_run_is_found_by_key_not_name(stage_runs, mlflow_store):
    import mlflow

    experiment = mlflow.create_experiment("distill-finer-ord")
    wanted = _run(experiment, "key-a", "FINISHED")
    _run(experiment, "key-b", "FINISHED")  # same name, other parameters or code
    _run(experiment, "key-a", "FAILED")
    _run(experiment, None, "FINISHED")  # same name, no key
    assert stage_runs.finished_run("distill-finer-ord", "key-a").info.run_id == wanted
    assert stage_runs.finished_run("distill-finer-ord", "key-c") is None
    assert stage_runs.finished_run("no-such-experiment", "key-a") is None


def test_run_of_a_dead_process_is_marked_failed_not_waited_for(stage_runs, mlflow_store):
    import mlflow

    process = _sleeper()
    tag = stage_runs._process_tag(process.pid)
    process.kill()
    process.wait()
    experiment = mlflow.create_experiment("e")
    stale = _run(experiment, "key-a", tags={stage_runs.HOST_TAG: socket.gethostname(), stage_runs.PROCESS_TAG: tag})
    stage_runs.wait_while_running("e", "key-a", poll=0.05, timeout=60)
    assert _status(stale) == "FAILED"
    assert stage_runs.ABANDONED_TAG in mlflow.get_run(stale).data.tags


def test_run_of_a_live_process_is_waited_for_until_it_ends(stage_runs, mlflow_store):
    import mlflow

    process = _sleeper()
    try:
        experiment = mlflow.create_experiment("e")
        running = _run(experiment, "key-a", tags={stage_runs.HOST_TAG: socket.gethostname(),
                                                  stage_runs.PROCESS_TAG: stage_runs._process_tag(process.pid)})
        assert stage_runs.process_alive(mlflow.get_run(running)) is True
        stopper = threading.Timer(1.0, process.kill)
        stopper.start()
        stage_runs.wait_while_running("e", "key-a", poll=0.1, timeout=0.01)  # the timeout is not for checkable runs
        stopper.join()
        assert process.poll() is not None  # returned only after the process ended
        assert _status(running) == "FAILED"
    finally:
        process.kill()
        process.wait()


def test_pid_reused_by_another_process_is_not_the_launched_one(stage_runs, mlflow_store):
    import mlflow

    process = _sleeper()
    try:
        pid, started = stage_runs._process_tag(process.pid).split(":")
        experiment = mlflow.create_experiment("e")
        run = _run(experiment, "key-a", tags={stage_runs.HOST_TAG: socket.gethostname(),
                                              stage_runs.PROCESS_TAG: f"{pid}:{float(started) - 100}"})
        assert stage_runs.process_alive(mlflow.get_run(run)) is False
    finally:
        process.kill()
        process.wait()


def test_unverifiable_running_run_times_out_with_a_message(stage_runs, mlflow_store):
    import mlflow

    experiment = mlflow.create_experiment("e")
    elsewhere = _run(experiment, "key-a", tags={stage_runs.HOST_TAG: "another-machine",
                                                stage_runs.PROCESS_TAG: "1:0.0"})
    with pytest.raises(RuntimeError, match=elsewhere) as raised:
        stage_runs.wait_while_running("e", "key-a", poll=0.05, timeout=0.2)
    assert "set_terminated" in str(raised.value)
    assert _status(elsewhere) == "RUNNING"  # not ours to end
    stage_runs.wait_while_running("e", "key-b", poll=0.05, timeout=0.2)  # other keys do not wait


def test_launch_runs_the_project_in_a_keyed_run(stage_runs, mlflow_store, tmp_path):
    import mlflow

    from findistill.stages.pipeline import CACHE_TAG

    project = tmp_path / "project"
    project.mkdir()
    (project / "MLproject").write_text(
        "name: tiny\n"
        "entry_points:\n"
        "  main:\n"
        "    parameters:\n"
        "      x: {type: string, default: a}\n"
        "    command: \"python -c \\\"import mlflow; mlflow.start_run(); mlflow.log_param('x', '{x}'); "
        "mlflow.end_run()\\\"\"\n"
        "  fail:\n"
        "    command: \"python -c \\\"raise SystemExit(3)\\\"\"\n")
    log = tmp_path / "run.log"
    run_id = stage_runs.launch("main", "tiny", "tiny-s1", {"x": "b"}, "key-a", log=log, project=project)
    run = mlflow.get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "tiny-s1"
    assert run.data.params == {"x": "b"}  # logged by the entry point into the run created for it
    assert run.data.tags[CACHE_TAG] == "key-a"
    assert run.data.tags[stage_runs.HOST_TAG] == socket.gethostname()
    assert stage_runs.PROCESS_TAG in run.data.tags
    assert stage_runs.finished_run("tiny", "key-a").info.run_id == run_id
    with pytest.raises(RuntimeError, match="FAILED"):
        stage_runs.launch("fail", "tiny", "broken", {}, "key-b", log=log, project=project)
    assert stage_runs.keyed_runs("tiny", "key-b", "FAILED")
