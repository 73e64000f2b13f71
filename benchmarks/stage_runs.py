"""Stage runs of the benchmarks: launched through ``mlflow run`` and found again by their cache key.

A run a benchmark launches is created here first, tagged with its stage's cache key
(``findistill.stages.pipeline.cache_key`` of the parameters, the local input files and
``code_version()``: the key ``main`` tags its reusable steps with), then handed to
``mlflow run --run-id``. An earlier result is therefore found by what it computed, never by its
run name; changed code, parameters or input files make a new key and a new run.

A run of the same key that is still RUNNING is waited for, but not forever: the launching
benchmark tags the run with its machine and the ``mlflow run`` process (pid and start time). On
that machine a run whose process is gone is marked FAILED and run again; a run whose process
cannot be checked here (another machine, or not launched by a benchmark) is waited for at most
``timeout`` seconds, then :func:`wait_while_running` raises saying which run and how to release it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
HOST_TAG = "findistill.benchmark.host"
PROCESS_TAG = "findistill.benchmark.process"  # "<pid>:<start time>" of the `mlflow run` process
ABANDONED_TAG = "findistill.benchmark.abandoned"
WAIT_TIMEOUT_S = 6 * 3600.0


def _client():
    from mlflow.tracking import MlflowClient

    return MlflowClient()


def stage_key(stage: str, params: dict[str, str]) -> str:
    """The cache key of ``mlflow run . -e stage`` with ``params``: the stage's config parsed from them as
    the entry point parses it (so defaults count), its local input files and the current code version.
    Raises ConfigError for parameters the stage would refuse."""
    from findistill.config import parse_params
    from findistill.stages import STAGES
    from findistill.stages.pipeline import cache_key, code_version

    return cache_key(stage, parse_params(STAGES[stage].Config, params), code_version())


def keyed_runs(experiment: str, key: str, status: str) -> list:
    """The runs of ``experiment`` (a name) tagged with cache ``key`` and in ``status``, newest first."""
    from findistill.stages.pipeline import CACHE_TAG

    client = _client()
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    return client.search_runs([found.experiment_id],
                              filter_string=f"tags.`{CACHE_TAG}` = '{key}' and attributes.status = '{status}'",
                              order_by=["attributes.start_time DESC"])


def finished_run(experiment: str, key: str):
    """The newest FINISHED run of ``experiment`` with cache ``key``, or None."""
    runs = keyed_runs(experiment, key, "FINISHED")
    return runs[0] if runs else None


def _process_tag(pid: int) -> str | None:
    try:
        return f"{pid}:{psutil.Process(pid).create_time()}"
    except psutil.Error:  # already gone
        return None


def process_alive(run) -> bool | None:
    """Whether the ``mlflow run`` process of ``run`` (an MLflow Run) is still there: True/False when a
    benchmark on this machine launched it, None when that cannot be told here."""
    tags = run.data.tags
    if tags.get(HOST_TAG) != socket.gethostname() or PROCESS_TAG not in tags:
        return None
    pid, started = tags[PROCESS_TAG].split(":", 1)
    try:
        process = psutil.Process(int(pid))
        # the start time tells the launched process from a later one that got its pid
        return abs(process.create_time() - float(started)) < 0.01 and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def mark_failed(run_id: str, reason: str) -> None:
    """End a RUNNING run whose process is gone as FAILED, saying why in a tag."""
    client = _client()
    client.set_tag(run_id, ABANDONED_TAG, reason)
    client.set_terminated(run_id, "FAILED")


def wait_while_running(experiment: str, key: str, *, poll: float = 20.0, timeout: float = WAIT_TIMEOUT_S) -> None:
    """Return once no run of ``experiment`` with cache ``key`` is RUNNING (another benchmark may be
    training it). A run launched on this machine whose process is gone is marked FAILED; one whose
    process cannot be checked from here is waited for at most ``timeout`` seconds, then RuntimeError."""
    waited_since = time.monotonic()
    announced = False
    while True:
        unknown, alive = [], []
        for run in keyed_runs(experiment, key, "RUNNING"):
            state = process_alive(run)
            if state is False:
                print(f"[stale] {experiment}/{run.info.run_name} ({run.info.run_id}): its mlflow run process is "
                      "gone; marked FAILED", flush=True)
                mark_failed(run.info.run_id, "the mlflow run process that ran it ended without ending the run")
            elif state is None:
                unknown.append(run)
            else:
                alive.append(run)
        if not unknown and not alive:
            return
        if unknown and time.monotonic() - waited_since > timeout:
            run = unknown[0]
            raise RuntimeError(
                f"{experiment}: run {run.info.run_id} ({run.info.run_name}) with the same cache key has been RUNNING "
                f"for more than {timeout / 3600:.1f} h of waiting, and its process cannot be checked from this "
                f"machine. If it died, end it (MlflowClient().set_terminated('{run.info.run_id}', 'FAILED')) and "
                "start the benchmark again")
        if not announced:
            run = (alive or unknown)[0]
            print(f"[wait] {experiment}/{run.info.run_name} ({run.info.run_id}) is running elsewhere", flush=True)
            announced = True
        time.sleep(poll)


def launch(entry: str, experiment: str, name: str, params: dict[str, str], key: str, *,
           log: Path | None = None, threads: int | None = None, project: Path = REPO,
           environment: dict[str, str] | None = None) -> str:
    """``mlflow run <project> -e entry`` in a run created here (named ``name``, tagged with cache ``key``,
    this machine and the ``mlflow run`` process), with ``environment`` added to this process's variables;
    return the run id once it FINISHED, else raise RuntimeError (the run ended FAILED). Output goes to
    ``log`` (None: this process's output)."""
    client = _client()
    experiment_obj = client.get_experiment_by_name(experiment)
    experiment_id = experiment_obj.experiment_id if experiment_obj else client.create_experiment(experiment)
    from findistill.stages.pipeline import CACHE_TAG

    run_id = client.create_run(experiment_id, run_name=name, tags={
        CACHE_TAG: key, HOST_TAG: socket.gethostname(), "mlflow.project.entryPoint": entry,
        "mlflow.source.type": "PROJECT", "mlflow.source.name": str(project)}).info.run_id
    command = [sys.executable, "-m", "mlflow", "run", str(project), "-e", entry, "--env-manager", "local",
               "--experiment-id", experiment_id, "--run-id", run_id]
    for k, value in params.items():
        command += ["-P", f"{k}={value}"]
    # the entry points run `python`: this interpreter's environment
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    env.update(environment or {})
    handle = open(log, "w") if log else None  # noqa: SIM115 - closed below
    try:
        process = subprocess.Popen(command, cwd=project, env=env, stdout=handle,
                                   stderr=subprocess.STDOUT if handle else None)
        try:
            tag = _process_tag(process.pid)
            if tag:
                client.set_tag(run_id, PROCESS_TAG, tag)
            code = process.wait()
        except BaseException:  # interrupted: `mlflow run` cancels its entry point and ends the run on SIGINT
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            raise
    finally:
        if handle:
            handle.close()
        if client.get_run(run_id).info.status == "RUNNING":  # `mlflow run` died before ending it
            mark_failed(run_id, "the mlflow run process ended without ending the run")
    status = client.get_run(run_id).info.status
    if code != 0 or status != "FINISHED":
        where = f"; see {log}" if log else ""
        raise RuntimeError(f"{experiment}/{name} ({run_id}) ended {status} (mlflow run exit code {code}){where}")
    return run_id
