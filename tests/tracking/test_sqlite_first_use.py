"""Processes that open a new SQLite store (its file does not exist yet) at the same time all succeed:
findistill's store builders (findistill/tracking/sqlite_store.py) let one of them create the tables while
the others wait."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import mlflow_run_command
from mlflow import MlflowClient

from findistill.tracking.sqlite_store import lock_path

PARALLEL = 3
# One first use of the store: the tracking store, then the model registry. The processes wait for each
# other after importing MLflow (a file per process in argv[2]) so that they open the store together.
FIRST_USE = """
import os, sys, time
from pathlib import Path
import mlflow

ready, parallel = Path(sys.argv[2]), int(sys.argv[3])
(ready / str(os.getpid())).touch()
while len(list(ready.iterdir())) < parallel:
    time.sleep(0.01)
client = mlflow.MlflowClient(tracking_uri=sys.argv[1])
client.search_experiments()
client.search_registered_models()
"""


def _run_together(commands: list[list[str]], folder: Path, env: dict[str, str] | None = None) -> list[str]:
    """Start ``commands`` at once in ``folder`` and wait for all; raise AssertionError naming each that failed
    (its exit status and the end of its output). Returns their outputs."""
    logs = [folder / f"process-{i}.log" for i in range(len(commands))]
    processes = []
    for command, log in zip(commands, logs):
        with open(log, "w") as out:
            processes.append(subprocess.Popen(command, cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT))
    codes = [process.wait(timeout=600) for process in processes]
    outputs = [log.read_text() for log in logs]
    failed = [f"process {i} exited {code}:\n{outputs[i][-2000:]}" for i, code in enumerate(codes) if code != 0]
    assert not failed, f"{len(failed)} of {len(commands)} failed\n" + "\n".join(failed)
    return outputs


def test_the_lock_file_sits_beside_the_database_and_memory_needs_none(tmp_path):
    assert lock_path(f"sqlite:///{tmp_path}/new.db") == tmp_path / "new.db.lock"
    assert lock_path("sqlite:///relative/new.db") == Path("relative/new.db.lock")
    assert lock_path("sqlite:///file:new.db?mode=ro&uri=true") == Path("new.db.lock")
    assert lock_path("sqlite://") is None
    assert lock_path("sqlite:///:memory:") is None
    assert lock_path("sqlite:///file:shared?mode=memory&cache=shared&uri=true") is None


def test_parallel_clients_create_a_new_store_once(tmp_path):
    uri = f"sqlite:///{tmp_path / 'store' / 'new.db'}"  # its folder does not exist either
    ready = tmp_path / "ready"
    ready.mkdir()
    _run_together([[sys.executable, "-c", FIRST_USE, uri, str(ready), str(PARALLEL)]] * PARALLEL, tmp_path)

    client = MlflowClient(tracking_uri=uri)
    assert [e.name for e in client.search_experiments()] == ["Default"]
    assert client.search_registered_models() == []
    assert (tmp_path / "store" / "new.db.lock").exists()


@pytest.mark.integration  # 70-80 s on 2 busy cores: three `mlflow run` launchers and stages at once
def test_parallel_mlflow_runs_on_a_new_store_all_finish(tmp_path):
    uri = f"sqlite:///{tmp_path / 'new.db'}"
    # an experiment each: launchers that create one new experiment by name race on the name, inside MLflow's
    # launcher (get or create), which is not what this test is about
    launches = [mlflow_run_command("prepare", uri, f"first-use-{i}", data="sample", max_sentences=20)
                for i in range(PARALLEL)]
    _run_together([command for command, _ in launches], tmp_path, env=launches[0][1])

    runs = MlflowClient(tracking_uri=uri).search_runs(
        [e.experiment_id for e in MlflowClient(tracking_uri=uri).search_experiments() if e.name != "Default"])
    assert sorted(run.info.status for run in runs) == ["FINISHED"] * PARALLEL
