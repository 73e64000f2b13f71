"""Optuna studies for ``search``: objectives, samplers, pruners and the storage that lets any
number of workers share one study.

Storage is Optuna's RDB storage (any SQLAlchemy URL: SQLite by default, PostgreSQL for workers on
several machines), with a heartbeat: a trial whose worker died is marked failed by the next worker
and its parameters are queued once more, so an interrupted study resumes and keeps its numbering.
"""

from __future__ import annotations

import hashlib
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import RDBStorage, RetryFailedTrialCallback
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.exc import SQLAlchemyError

from findistill.config import ValueProblem


@dataclass(frozen=True)
class Objective:
    """A value a trial returns: the run metric it is read from and the direction it is optimised in."""

    name: str
    metric: str
    direction: str
    label: str


OBJECTIVES = {
    "f1": Objective("f1", "validation_f1", "maximize", "validation entity F1"),
    "latency": Objective("latency", "latency_cpu_b1_ms_p50", "minimize", "CPU latency b1 p50 (ms)"),
    "params": Objective("params", "params_total", "minimize", "parameters"),
}
SAMPLERS = ("tpe", "nsga2", "random")
# the heartbeat, RetryFailedTrialCallback and TPE's ``group`` are marked experimental; they are what this module
# relies on
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
PRUNERS = ("median", "halving", "none")
#: trial states that count towards a study's ``n_trials``
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
HEARTBEAT_S = 60
GRACE_S = 180


def parse_objectives(text: str) -> list[Objective]:
    """``f1``, ``f1,latency`` or ``f1,params`` -> objectives (F1 always first)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names or names[0] != "f1" or len(names) > 2 or len(set(names)) < len(names) \
            or any(n not in OBJECTIVES for n in names):
        raise ValueProblem("objectives", f"expected f1, f1,latency or f1,params, got {text!r}")
    return [OBJECTIVES[n] for n in names]


def default_storage(root: str | Path = ".findistill") -> str:
    """SQLite file ``<root>/optuna.db`` (absolute, so workers started elsewhere find the same file)."""
    path = Path(root).resolve() / "optuna.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def redact(url: str) -> str:
    """A storage URL without its password (for tags and logs)."""
    head, sep, tail = url.partition("://")
    if "@" not in tail:
        return url
    credentials, host = tail.rsplit("@", 1)
    if ":" not in credentials:
        return url
    return f"{head}{sep}{credentials.split(':', 1)[0]}:***@{host}"


def make_storage(url: str) -> RDBStorage:
    """RDB storage with a heartbeat (stale trials fail and are retried once)."""
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        engine_kwargs["connect_args"] = {"timeout": 60}  # several local workers wait for the file lock
    else:
        engine_kwargs["pool_pre_ping"] = True
    try:
        return RDBStorage(url, engine_kwargs=engine_kwargs, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                          failed_trial_callback=RetryFailedTrialCallback(max_retry=1))
    except (ImportError, ValueError, SQLAlchemyError) as err:  # missing driver, bad URL, unreachable server
        raise ValueProblem("storage", f"cannot open Optuna storage {redact(url)}: {err}") from None


def make_sampler(name: str, seed: int | None, n_objectives: int) -> optuna.samplers.BaseSampler:
    """``tpe`` (multivariate TPE, also for two objectives), ``nsga2`` or ``random``."""
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True,
                                          n_startup_trials=8 if n_objectives == 1 else 10)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=8)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueProblem("sampler", f"expected one of {', '.join(SAMPLERS)}, got {name!r}")


def make_pruner(name: str, n_objectives: int) -> optuna.pruners.BasePruner:
    """``median`` (from epoch 2 on, stop a trial whose best F1 so far is below the median of earlier
    trials at that epoch, once 4 trials have finished),
    ``halving`` (successive halving on epochs) or ``none``; multi-objective studies never prune."""
    if name not in PRUNERS:
        raise ValueProblem("pruner", f"expected one of {', '.join(PRUNERS)}, got {name!r}")
    if name == "none" or n_objectives > 1:
        return optuna.pruners.NopPruner()
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=2)  # epochs count from 1
    return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=2)


def open_study(storage: RDBStorage, name: str, objectives: Sequence[Objective], sampler_name: str, seed: int,
               pruner_name: str) -> tuple[optuna.Study, bool]:
    """Create study ``name`` or join the existing one; returns ``(study, created)``.

    The worker that creates the study samples with a seed made of ``seed`` and the study's name (a
    fresh single-worker study is reproducible, and two studies with one seed do not start from the
    same trials); a worker that joins draws its own seed, so workers do not propose the same trials.
    Joining a study with other directions raises ValueProblem.
    """
    directions = [o.direction for o in objectives]
    pruner = make_pruner(pruner_name, len(objectives))
    own_seed = int.from_bytes(hashlib.sha256(f"{name}:{seed}".encode()).digest()[:4], "little")
    try:
        study = optuna.create_study(storage=storage, study_name=name, directions=directions,
                                    sampler=make_sampler(sampler_name, own_seed, len(objectives)), pruner=pruner)
        study.set_user_attr("objectives", [o.name for o in objectives])
        return study, True
    except optuna.exceptions.DuplicatedStudyError:
        pass
    joined_seed = int.from_bytes(os.urandom(4), "little")
    study = optuna.load_study(study_name=name, storage=storage,
                              sampler=make_sampler(sampler_name, joined_seed, len(objectives)), pruner=pruner)
    existing = study.user_attrs.get("objectives")
    if [d.name.lower() for d in study.directions] != directions or (existing and existing != [o.name for o in
                                                                                            objectives]):
        raise ValueProblem("objectives", f"study {name!r} exists with objectives {existing or study.directions}; "
                           f"this command asks for {[o.name for o in objectives]} (use another study_name)")
    return study, False


def counted_trials(study: optuna.Study) -> int:
    """Trials that count towards ``n_trials``: complete, pruned or failed."""
    return len(study.get_trials(deepcopy=False, states=COUNTED))


def chosen_trials(study: optuna.Study, limit: int) -> list[FrozenTrial]:
    """The best trial (one objective) or up to ``limit`` trials of the Pareto front (two objectives,
    by F1 first); empty when no trial completed."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return []
    if len(study.directions) == 1:
        return [study.best_trial]
    front = sorted(study.best_trials, key=lambda t: -t.values[0])
    if len(front) <= limit:
        return front
    # spread the picks over the front: its ends and evenly between them
    picks = sorted({round(i * (len(front) - 1) / (limit - 1)) for i in range(limit)}) if limit > 1 else [0]
    return [front[i] for i in picks]


def finite(values: Sequence[float] | None) -> bool:
    return values is not None and all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)
