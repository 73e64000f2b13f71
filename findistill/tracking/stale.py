"""Runs left RUNNING by a process that died (SIGKILL, an out-of-memory kill, a lost machine), found and
marked KILLED.

Every stage run records who runs it (:func:`owner_tags`: host, process id and the process's start time).
A RUNNING run whose owner is on this host and no longer alive (no such process, or a process with the
same id that started later: the id was reused) is stale. A run owned by another host cannot be checked
from here and is left alone, as is a run without owner tags (logged by other tools or older code).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

import mlflow
import psutil
from mlflow.tracking import MlflowClient

HOST_TAG, PID_TAG, STARTED_TAG = "findistill.host", "findistill.pid", "findistill.pid_started"
REASON_TAG = "findistill.fail_reason"


def owner_tags() -> dict[str, str]:
    """The tags that name this process as a run's owner."""
    me = psutil.Process()
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(me.pid), STARTED_TAG: f"{me.create_time():.2f}"}


def owner_alive(tags: dict[str, str]) -> bool | None:
    """Whether the process named by a run's owner tags still runs: None when it cannot be told from here
    (another host, or no owner tags)."""
    if tags.get(HOST_TAG) != socket.gethostname() or PID_TAG not in tags:
        return None
    try:
        process = psutil.Process(int(tags[PID_TAG]))
        started = process.create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess, ValueError):
        return False
    except psutil.AccessDenied:  # another user's live process
        return True
    recorded = float(tags.get(STARTED_TAG, started))
    return abs(started - recorded) < 1.0  # a later process with the same id is not the owner


@dataclass
class Sweep:
    """What :func:`mark_stale_runs` found: the runs it marked KILLED (or would, on a dry run) and the
    RUNNING runs it could not check."""

    killed: list[str]
    unknown: list[str]


def mark_stale_runs(experiment_ids: list[str], *, dry_run: bool = False) -> Sweep:
    """Mark every stale RUNNING run of ``experiment_ids`` KILLED, with the reason in ``findistill.fail_reason``."""
    client = MlflowClient()
    running = client.search_runs(experiment_ids, "attributes.status = 'RUNNING'", max_results=50_000)
    sweep = Sweep(killed=[], unknown=[])
    for run in running:
        alive = owner_alive(run.data.tags)
        if alive is None:
            sweep.unknown.append(run.info.run_id)
        elif not alive:
            sweep.killed.append(run.info.run_id)
            if not dry_run:
                tags = run.data.tags
                client.set_tag(run.info.run_id, REASON_TAG, f"its process {tags[PID_TAG]} on {tags[HOST_TAG]} ended "
                               "without finishing the run (killed); marked KILLED by findistill gc")
                client.set_terminated(run.info.run_id, "KILLED")
    return sweep


def all_experiment_ids() -> list[str]:
    return [e.experiment_id for e in mlflow.search_experiments()]
