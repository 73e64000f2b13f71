"""The team's tracking server: ``scripts/server.sh`` on a fresh database of the throwaway PostgreSQL server, a real
stage logged into it through ``mlflow run``, and what the stage left there read back through the REST API, as a
teammate's client would (skipped, by the ``postgres`` fixture, where PostgreSQL cannot be had)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from conftest import REPO, mlflow_run
from pg_server import free_port

pytestmark = pytest.mark.integration

SCRIPT = REPO / "scripts" / "server.sh"
EXPERIMENT, REGISTERED = "server-test", "server-test"
#: the splits the stage logs as the run's dataset inputs (context = split, name = "<corpus>/<split>")
SPLITS = {"train", "validation", "test"}
CONTEXT_TAG = "mlflow.data.context"


def _log_tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:] if log.exists() else "(no log)"


@pytest.fixture
def tracking_server(postgres, tmp_path) -> Iterator[tuple[str, Path]]:
    """``scripts/server.sh --workers 1`` on a fresh database, a free port and artifacts in ``tmp_path``; yields
    ``(url, artifacts folder)`` once ``GET /health`` answers, and stops the server's process group afterwards."""
    port, artifacts, log = free_port(), tmp_path / "artifacts", tmp_path / "server.log"
    env = {**os.environ, "FINDISTILL_BACKEND_STORE_URI": postgres.create_database(f"server_{uuid.uuid4().hex[:8]}"),
           "FINDISTILL_SERVER_PORT": str(port), "FINDISTILL_ARTIFACTS_DESTINATION": str(artifacts),
           "FINDISTILL_PYTHON": sys.executable}
    with log.open("w") as out:
        server = subprocess.Popen(["bash", str(SCRIPT), "--workers", "1"], env=env, stdout=out,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, f"scripts/server.sh exited with {server.returncode}:\n{_log_tail(log)}"
            try:
                if requests.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, f"no answer from {url}/health in 120 s:\n{_log_tail(log)}"
            time.sleep(0.5)
        yield url, artifacts
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the script exec'd `mlflow server`; its uvicorn shares the group
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def _api(url: str, method: str, endpoint: str, **payload) -> dict:
    """One call of the MLflow REST API (``/api/2.0/mlflow/<endpoint>``): GET with query parameters, else JSON."""
    address = f"{url}/api/2.0/mlflow/{endpoint}"
    if method == "GET":
        response = requests.get(address, params=payload, timeout=30)
    else:
        response = requests.request(method, address, json=payload, timeout=30)
    assert response.status_code == 200, f"{method} {endpoint}: {response.status_code} {response.text[:1000]}"
    return response.json()


def _dataset_inputs(run: dict) -> dict[str, str]:
    """``{context: dataset name}`` of a REST run's ``inputs.dataset_inputs``."""
    inputs = {}
    for item in run.get("inputs", {}).get("dataset_inputs", []):
        tags = {t["key"]: t["value"] for t in item.get("tags", [])}
        inputs[tags.get(CONTEXT_TAG, "")] = item["dataset"]["name"]
    return inputs


def test_a_stage_run_through_mlflow_run_logs_run_datasets_model_and_version_into_the_team_server(
        tracking_server, tiny_encoder_dir, tmp_path, monkeypatch):
    url, artifacts = tracking_server
    monkeypatch.chdir(tmp_path)
    done = mlflow_run("finetune", url, EXPERIMENT, data="sample", max_sentences=16, epochs=1, batch_size=8,
                      max_length=64, measure_resources="false", registered_model_name=REGISTERED,
                      model=tiny_encoder_dir)
    assert done.returncode == 0, done.stderr[-3000:]

    experiment = _api(url, "GET", "experiments/get-by-name", experiment_name=EXPERIMENT)["experiment"]
    # artifacts go through the server (clients on other machines need no shared disk) into its destination
    assert experiment["artifact_location"].startswith("mlflow-artifacts:")
    runs = _api(url, "POST", "runs/search", experiment_ids=[experiment["experiment_id"]],
                filter="tags.`findistill.stage` = 'finetune'")["runs"]
    assert len(runs) == 1, runs
    run_id = runs[0]["info"]["run_id"]
    run = _api(url, "GET", "runs/get", run_id=run_id)["run"]
    assert run["info"]["status"] == "FINISHED"
    assert "test_f1" in {m["key"] for m in run["data"]["metrics"]}
    run_files = artifacts / experiment["experiment_id"] / run_id / "artifacts"
    assert (run_files / "data_stats.json").is_file(), sorted(p.name for p in artifacts.rglob("*"))[:50]

    # the splits are the run's dataset inputs, each named after its split and tagged with it as its context
    inputs = _dataset_inputs(run)
    assert inputs, f"no dataset inputs in run {run_id}: {run.get('inputs')}"
    assert set(inputs) == SPLITS, inputs
    assert all(split in name for split, name in inputs.items()), inputs

    models = _api(url, "POST", "logged-models/search", experiment_ids=[experiment["experiment_id"]])["models"]
    logged = [m["info"] for m in models if m["info"].get("source_run_id") == run_id]
    assert len(logged) == 1, models
    assert logged[0]["name"] == "model" and logged[0]["status"] == "LOGGED_MODEL_READY", logged[0]
    model_files = artifacts / experiment["experiment_id"] / "models" / logged[0]["model_id"] / "artifacts"
    assert (model_files / "MLmodel").is_file(), sorted(p.name for p in artifacts.rglob("*"))[:50]

    version = _api(url, "GET", "model-versions/get", name=REGISTERED, version="1")["model_version"]
    assert version["run_id"] == run_id and version["status"] == "READY", version
    assert version["source"] == f"models:/{logged[0]['model_id']}", version  # the run's logged model
