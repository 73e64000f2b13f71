"""The stage cache of ``main``: each step's key (stage, parameters, local input files, code version), the
finished run to reuse for it, and :class:`Pipeline`, which runs the steps as child runs or reuses them.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import mlflow
from mlflow.tracking import MlflowClient

import findistill
from findistill.config import to_dict
from findistill.runtimes.variants import QualityError
from findistill.tracking.runs import child_context

CACHE_TAG = "findistill.cache_key"
#: parameters that do not change a stage's result (left out of the cache key)
NOT_IN_KEY = ("device", "checkpoint_dir", "keep_checkpoints", "checkpoint_steps")


def code_version() -> str:
    """Hash of every file of the ``findistill`` package (sources and the bundled sample)."""
    root = Path(findistill.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _fingerprint(value: Any) -> list | None:
    """Names, sizes and modification times of a local input path (file or folder), else None."""
    if not isinstance(value, str) or not value or "://" in value or value.startswith(("runs:/", "models:/")):
        return None
    path = Path(value)
    if not path.exists():
        return None
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())[:5000]
    return [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in files]


def cache_key(stage: str, config: Any, code: str) -> str:
    """The key under which a stage's finished run is reused: stage, parameters (upstream run ids
    included), local input files, code version."""
    params = {k: v for k, v in to_dict(config).items() if k not in NOT_IN_KEY}
    inputs = {k: fp for k, v in params.items() if (fp := _fingerprint(v)) is not None}
    payload = json.dumps({"stage": stage, "params": params, "inputs": inputs, "code": code}, sort_keys=True,
                         default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def find_finished(experiment_id: str, key: str) -> str | None:
    """The newest FINISHED run of ``experiment_id`` tagged with cache ``key``."""
    runs = MlflowClient().search_runs(
        [experiment_id], filter_string=f"tags.`{CACHE_TAG}` = '{key}' and attributes.status = 'FINISHED'",
        order_by=["attributes.end_time DESC"], max_results=1)
    return runs[0].info.run_id if runs else None


class Pipeline:
    """Runs stages as child runs of the active parent run, reusing finished runs with the same key."""

    def __init__(self, experiment_id: str, reuse: bool = True):
        self.experiment_id = experiment_id
        self.reuse = reuse
        self.code = code_version()
        self.steps: list[dict[str, Any]] = []

    def run(self, step: str, stage_module: ModuleType, config: Any) -> str:
        """Run ``stage_module.run(config)`` as the child run ``step``, or reuse a finished run with the same key."""
        stage = stage_module.__name__.rsplit(".", 1)[-1]
        key = cache_key(stage, config, self.code)
        started = time.perf_counter()
        hit = find_finished(self.experiment_id, key) if self.reuse else None
        if hit:
            print(f"\n[main] {step}: reusing run {hit} (same parameters, inputs and code)")
            run_id = hit
        else:
            print(f"\n[main] {step}: running {stage}")
            try:
                with child_context(run_name=step, tags={CACHE_TAG: key, "findistill.step": step}):
                    run_id = stage_module.run(config)
            except QualityError:
                raise  # a refused variant: nothing to resume, the caller decides
            except Exception as err:
                done = ", ".join(s["step"] for s in self.steps) or "none"
                print(f"\n[main] stage '{step}' ({stage}) failed: {type(err).__name__}: {err}\n"
                      f"[main] finished stages ({done}) are kept; re-running the same main command reuses them "
                      "and resumes this one from its last checkpoint")
                raise
        self.steps.append({"step": step, "stage": stage, "run_id": run_id, "reused": bool(hit),
                           "seconds": round(time.perf_counter() - started, 1), "cache_key": key})
        mlflow.set_tag(f"findistill.step.{step}", run_id)
        return run_id
