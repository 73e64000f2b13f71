"""The thin MLflow layer: runs for stages, URIs to local folders, logging models and tables.

Only this module and :mod:`findistill.stages` import MLflow; library code gets plain paths and
returns plain dicts. Tests point ``MLFLOW_TRACKING_URI`` at a temporary SQLite file.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
from mlflow.tracking import MlflowClient

import findistill
from findistill.config import to_dict

MLFLOW_SCHEMES = ("runs:/", "models:/", "mlflow-artifacts:/")
STAGE_TAG = "findistill.stage"


def is_mlflow_uri(ref: str) -> bool:
    """True for ``runs:/``, ``models:/`` and ``mlflow-artifacts:/`` references."""
    return ref.startswith(MLFLOW_SCHEMES)


def localize(ref: str) -> str:
    """Local path for ``ref``: MLflow URIs are downloaded (cached by MLflow per call), others pass through."""
    if not is_mlflow_uri(ref):
        return ref
    try:
        return mlflow.artifacts.download_artifacts(artifact_uri=ref)
    except Exception as err:  # MLflow raises several types (MlflowException, OSError) for a bad URI
        raise FileNotFoundError(f"could not fetch {ref!r} from MLflow ({mlflow.get_tracking_uri()}): {err}") from err


def localize_model(ref: str) -> str:
    """Local save_pretrained folder for a model reference.

    An MLflow pyfunc model logged by findistill keeps the Hugging Face folder under
    ``artifacts/hf_model``; that folder is returned. Non-MLflow refs pass through.
    """
    path = localize(ref)
    if not is_mlflow_uri(ref):
        return path
    root = Path(path)
    for candidate in (root, root / "artifacts" / "hf_model", root / "hf_model"):
        if (candidate / "config.json").exists():
            return str(candidate)
    raise FileNotFoundError(f"{ref}: no Hugging Face model (config.json) in the MLflow artifacts at {root}")


_CHILD: dict[str, Any] = {}  # run name and tags for the next stage run opened (set by ``child_context``)


@contextlib.contextmanager
def child_context(run_name: str, tags: dict[str, str]) -> Iterator[None]:
    """Stage runs opened inside get ``run_name`` and ``tags`` (``main`` names its steps and cache keys)."""
    previous = dict(_CHILD)
    _CHILD.update(run_name=run_name, tags=tags)
    try:
        yield
    finally:
        _CHILD.clear()
        _CHILD.update(previous)


@contextlib.contextmanager
def stage_run(stage: str, config: Any, run_name: str | None = None) -> Iterator[mlflow.ActiveRun]:
    """Open the stage's MLflow run, log its config (params + ``config.json``) and stage tags.

    Under ``mlflow run`` the run already exists (``MLFLOW_RUN_ID``) and is picked up; inside a
    parent run (``main``) a nested child run is opened. On an exception the run ends FAILED.
    """
    nested = mlflow.active_run() is not None
    launched = not nested and bool(os.environ.get("MLFLOW_RUN_ID"))  # `mlflow run` made the run (and named it)
    name = _CHILD.get("run_name") if nested else None
    with mlflow.start_run(run_name=None if launched else name or run_name or stage, nested=nested) as run:
        params = to_dict(config)  # stage configs are flat dataclasses
        existing = mlflow.get_run(run.info.run_id).data.params  # `mlflow run` logged the -P values already
        mlflow.log_params({k: str(v) for k, v in params.items() if k not in existing})
        mlflow.set_tags({STAGE_TAG: stage, "findistill.version": findistill.__version__,
                         **(_CHILD.get("tags", {}) if nested else {})})
        mlflow.log_dict(to_dict(config), "config.json")
        yield run


def log_metrics(metrics: dict[str, float], step: int | None = None) -> None:
    """Log finite numeric metrics (NaN/inf and non-numbers are skipped, not errors)."""
    clean = {
        k: float(v) for k, v in metrics.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))
    }
    if clean:
        mlflow.log_metrics(clean, step=step)


def log_text(text: str, artifact_file: str) -> None:
    mlflow.log_text(text, artifact_file)


def log_json(payload: Any, artifact_file: str) -> None:
    mlflow.log_dict(json.loads(json.dumps(payload, default=str)), artifact_file)


def log_artifacts(local_dir: str | os.PathLike, artifact_path: str | None = None) -> None:
    mlflow.log_artifacts(str(local_dir), artifact_path)


def log_ner_model(hf_dir: str | os.PathLike, *, max_length: int, example_texts: list[str]) -> str:
    """Log a save_pretrained folder as an MLflow pyfunc NER model named ``model``; return its URI.

    The model answers a DataFrame with a ``text`` column with entity spans per text.
    """
    from findistill.serving import NerPyfunc

    return log_hf_pyfunc(hf_dir, NerPyfunc(), max_length=max_length, example_texts=example_texts)


def log_hf_pyfunc(hf_dir: str | os.PathLike, python_model: Any, *, max_length: int, example_texts: list[str]) -> str:
    """Log a save_pretrained folder (artifact ``hf_model``) wrapped by ``python_model`` as ``model``; return
    ``runs:/<id>/model``. :func:`localize_model` finds the folder again for the next stage."""
    import pandas as pd

    run_id = mlflow.active_run().info.run_id
    requirements = [
        "torch==2.13.0", f"transformers=={_version('transformers')}", f"mlflow=={mlflow.__version__}",
        f"seqeval=={_version('seqeval')}", "pandas", "numpy",
    ]
    mlflow.pyfunc.log_model(
        name="model",
        python_model=python_model,
        artifacts={"hf_model": str(hf_dir)},
        code_paths=[str(Path(findistill.__file__).parent)],
        input_example=pd.DataFrame({"text": example_texts}),
        model_config={"max_length": max_length},
        pip_requirements=requirements,
    )
    return f"runs:/{run_id}/model"


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def register(model_uri: str, name: str, tags: dict[str, Any] | None = None, alias: str | None = None) -> int:
    """Register ``model_uri`` as a new version of ``name`` (after the run's work is complete); return the version."""
    version = mlflow.register_model(model_uri, name)
    client = MlflowClient()
    for k, v in (tags or {}).items():
        client.set_model_version_tag(name, version.version, k, str(v))
    if alias:
        client.set_registered_model_alias(name, alias, version.version)
    return int(version.version)


def scratch_dir(prefix: str) -> tempfile.TemporaryDirectory:
    """A temporary folder for files to log (removed when the context ends)."""
    return tempfile.TemporaryDirectory(prefix=f"findistill-{prefix}-")
