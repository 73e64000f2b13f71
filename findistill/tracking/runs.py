"""The MLflow side of a stage: its run, its logged values, and references turned into local folders.

Tests point ``MLFLOW_TRACKING_URI`` at a temporary SQLite file.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow

import findistill
from findistill.config import ConfigError, to_dict
from findistill.data.corpus import NerData
from findistill.tracking.environment import environment_tags
from findistill.tracking.stale import REASON_TAG, owner_tags
from findistill.training.distributed import is_main_process, rank

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
        cause = (str(err).strip().splitlines() or [type(err).__name__])[0]
        expected = {"runs:/": "runs:/<run_id>/<artifact path> of a run in this store",
                    "models:/": "models:/<name>@<alias>, models:/<name>/<version> or models:/<model_id> of "
                                "a model in this store"}
        what = next((text for scheme, text in expected.items() if ref.startswith(scheme)), "an artifact URI")
        raise FileNotFoundError(f"could not fetch {ref!r} from MLflow ({mlflow.get_tracking_uri()}): {cause}; "
                                f"expected {what}") from err


def localize_model(ref: str) -> str:
    """Local folder of a model or tokenizer reference.

    A pyfunc model logged by findistill keeps its Hugging Face folder under ``artifacts/<folder name>``
    (``hf_model`` as the stages write it);
    ``runs:/<id>/tokenizer`` is a tokenizer folder. Either folder is returned; non-MLflow refs
    (``packaged:...``, local folders, Hub ids) pass through.
    """
    path = localize(ref)
    if not is_mlflow_uri(ref):
        return path
    root = Path(path)
    logged = sorted((root / "artifacts").glob("*")) if (root / "artifacts").is_dir() else []  # named after the folder
    for candidate in (root, root / "artifacts" / "hf_model", root / "hf_model", *logged):
        if (candidate / "config.json").exists() or (candidate / "tokenizer.json").exists():
            return str(candidate)
    raise FileNotFoundError(f"{ref}: no Hugging Face model or tokenizer in the MLflow artifacts at {root}")


def corpus_name(ref: str) -> str:
    """A short name for a data reference: ``sample``, the folder or file name of a path (``finer-ord``), the
    name of the data a ``prepare`` run read for ``runs:/<id>/data``, a Hub id as it is."""
    if ref.startswith("runs:/"):
        try:
            source = mlflow.get_run(ref.removeprefix("runs:/").split("/")[0]).data.params.get("data")
        except Exception:  # noqa: BLE001 (a run of another store, or none: the reference names itself)
            source = None
        return corpus_name(source) if source and not source.startswith("runs:/") else ref
    path = Path(ref.rstrip("/"))
    if path.is_file():
        return path.stem
    return path.name if path.exists() else ref


def experiment_ids(names: list[str], parameter: str = "experiments") -> list[str]:
    """The ids of experiments given by name or id; an unknown one is a ConfigError naming ``parameter``
    and the experiments the store has."""
    ids = []
    for name in names:
        found = mlflow.get_experiment_by_name(name)
        if found is None and name.isdigit():
            try:
                found = mlflow.get_experiment(name)
            except mlflow.exceptions.MlflowException:
                found = None
        if found is None:
            known = ", ".join(e.name for e in mlflow.search_experiments()) or "none"
            raise ConfigError(f"{parameter}: no experiment {name!r} in {mlflow.get_tracking_uri()} (known: {known})")
        ids.append(found.experiment_id)
    return ids


def logged_model_id(ref: str) -> str | None:
    """The MLflow logged model (``m-...``) behind ``runs:/<id>/model``, ``models:/<model_id>`` or
    ``models:/<name>@<alias>``; None for other references (folders, ``packaged:...``) and for models
    logged before MLflow 3."""
    if not ref.startswith(("runs:/", "models:/")):
        return None
    try:
        return mlflow.models.get_model_info(ref).model_id
    except Exception:  # noqa: BLE001 (not a logged model: the evaluation is logged on the run only)
        return None


def short_ref(ref: str) -> str:
    """A model reference short enough for a run name: ``runs:/3f2a9c1b``, ``models:/fin-ner@champion``, a
    folder's name."""
    if ref.startswith("runs:/"):
        return f"runs:/{ref.removeprefix('runs:/')[:8]}"
    if ref.startswith(MLFLOW_SCHEMES) or ref.startswith("packaged:"):
        return ref
    return Path(ref.rstrip("/")).name or ref


_CHILD: dict[str, Any] = {}  # how the next stage run is opened (set by ``child_context`` / ``into_active_run``)


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
def into_active_run() -> Iterator[None]:
    """A stage run inside logs into the run already active instead of opening its own: the caller
    opened it and ends it (``search`` opens one run per trial before the trial's parameters are known
    to be usable, so that a trial that fails early still has its run)."""
    previous = dict(_CHILD)
    _CHILD.clear()
    _CHILD["adopt"] = True
    try:
        yield
    finally:
        _CHILD.clear()
        _CHILD.update(previous)


#: MLflow's experiment-kind tag, and the kind of an experiment that trains models
EXPERIMENT_KIND_TAG, EXPERIMENT_KIND = "mlflow.experimentKind", "custom_model_development"
#: the run tag the MLflow UI shows as the run's description
DESCRIPTION_TAG = "mlflow.note.content"


def _mark_experiment(experiment_id: str) -> None:
    """Tag the experiment as model training (unless it has a kind already). The UI's switch between its
    GenAI and model-training views is a browser preference; the link the stages print opens the latter."""
    client = mlflow.MlflowClient()
    if EXPERIMENT_KIND_TAG not in client.get_experiment(experiment_id).tags:
        client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)


def _log_stage(run: mlflow.ActiveRun, stage: str, config: Any, tags: dict[str, str]) -> None:
    _mark_experiment(run.info.experiment_id)
    params = to_dict(config)  # stage configs are flat dataclasses
    existing = mlflow.get_run(run.info.run_id).data.params  # `mlflow run` logged the -P values already
    mlflow.log_params({k: str(v) for k, v in params.items() if k not in existing})
    mlflow.set_tags({STAGE_TAG: stage, "findistill.version": findistill.__version__, **owner_tags(),
                     **environment_tags(), **tags})
    mlflow.log_dict(params, "config.json")


@contextlib.contextmanager
def stage_run(stage: str, config: Any, run_name: str | None = None) -> Iterator[mlflow.ActiveRun]:
    """Open the stage's MLflow run, log its config (params + ``config.json``), stage tags and the
    environment's ``env.*`` tags (:func:`findistill.tracking.environment.environment_tags`).

    Under ``mlflow run`` the run already exists (``MLFLOW_RUN_ID``) and is picked up; inside a
    parent run (``main``) a nested child run is opened. ``run_name`` names the run (also one that
    ``mlflow run`` opened). On an exception the run ends FAILED. Inside :func:`into_active_run` the
    active run is used as it is, and left open.
    """
    if _CHILD.get("adopt"):
        active = mlflow.active_run()
        if active is None:
            raise RuntimeError("into_active_run: no active MLflow run to log into")
        _log_stage(active, stage, config, {})
        yield active
        return
    if not is_main_process():
        with _scratch_tracking(), mlflow.start_run(run_name=run_name or stage) as run:
            yield run
        return
    check_tracking_reachable()
    nested = mlflow.active_run() is not None
    launched = not nested and bool(os.environ.get("MLFLOW_RUN_ID"))  # `mlflow run` made the run (and named it)
    name = _CHILD.get("run_name") if nested else None
    with mlflow.start_run(run_name=None if launched else name or run_name or stage, nested=nested) as run:
        if launched and run_name:  # `mlflow run` gave the run a random name; a stage that knows better renames it
            mlflow.set_tag("mlflow.runName", run_name)
        _log_stage(run, stage, config, _CHILD.get("tags", {}) if nested else {})
        try:
            yield run
        except BaseException as err:
            reason = (str(err).strip().splitlines() or [""])[0][:500]
            mlflow.set_tag(REASON_TAG, f"{type(err).__name__}: {reason}" if reason else type(err).__name__)
            raise


#: what a stage run of rank > 0 would log goes to a throwaway store; these variables point elsewhere
_RUN_ENVIRONMENT = ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_TRACKING_URI",
                    "MLFLOW_REGISTRY_URI")


@contextlib.contextmanager
def _scratch_tracking() -> Iterator[None]:
    """MLflow pointed at a temporary SQLite store, deleted on leaving: under ``torchrun`` the processes of
    rank > 0 run the same stage code as rank 0, and only rank 0's run is the stage's run."""
    saved = {name: os.environ.pop(name) for name in _RUN_ENVIRONMENT if name in os.environ}
    uri, registry = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    with scratch_dir(f"rank{rank()}-tracking") as tmp:
        mlflow.set_tracking_uri(f"sqlite:///{Path(tmp) / 'mlflow.db'}")
        mlflow.set_registry_uri(f"sqlite:///{Path(tmp) / 'mlflow.db'}")
        mlflow.set_experiment("scratch")
        try:
            yield
        finally:
            while mlflow.active_run():
                mlflow.end_run()
            mlflow.set_tracking_uri(uri)
            mlflow.set_registry_uri(registry)
            mlflow.tracking.fluent._active_experiment_id = None
            os.environ.update(saved)


def check_tracking_reachable(timeout: float = 5.0) -> None:
    """Raise ConfigError when the tracking URI is an HTTP server that does not answer (instead of MLflow's
    minutes of retries)."""
    uri = mlflow.get_tracking_uri()
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme not in ("http", "https"):
        return
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        socket.create_connection((parsed.hostname, port), timeout=timeout).close()
    except OSError as err:
        raise ConfigError(f"tracking URI {uri}: cannot connect ({err.strerror or err}); start the server "
                          "(`make server`), or unset MLFLOW_TRACKING_URI to log into the local SQLite store") from err


def describe_run(text: str) -> None:
    """Set the active run's description (the UI's description field): what it did and its key result."""
    mlflow.set_tag(DESCRIPTION_TAG, text)


def log_metrics(metrics: dict[str, float], step: int | None = None, *, dataset: Any = None,
                model_id: str | None = None) -> None:
    """Log finite numeric metrics (NaN/inf and non-numbers are skipped, not errors).

    ``dataset`` (an MLflow dataset, see :func:`split_dataset`) says what they were measured on: it is
    logged as a run input if it is not one yet. ``model_id`` links them to that logged model; without it,
    metrics logged at step 0 after the run logged a model are linked to that model.
    """
    clean = {
        k: float(v) for k, v in metrics.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))
    }
    if clean:
        mlflow.log_metrics(clean, step=step, dataset=dataset, model_id=model_id)


def split_dataset(data: NerData, split: str):
    """One split of ``data`` as an MLflow dataset named ``<corpus>/<split>`` (its digest identifies the
    sentences): a table of the space-joined ``tokens`` and their ``tags``, sourced from the split's file."""
    import pandas as pd
    from mlflow.data.sources import LocalArtifactDatasetSource

    sentences = data.splits[split]
    frame = pd.DataFrame({"tokens": [" ".join(s.tokens) for s in sentences],
                          "tags": [" ".join(s.tags) for s in sentences]})
    source = LocalArtifactDatasetSource(str(data.files.get(split, data.name)))
    return mlflow.data.from_pandas(frame, source=source, name=f"{data.name}/{split}", targets="tags")


def log_dataset_inputs(data: NerData, attempts: int = 3) -> None:
    """Log every split of ``data`` as an input of the active run, with the split as its context.

    The tracking store looks a dataset up and inserts it if missing, in one transaction but without
    a lock: two runs logging the same split into one experiment at the same moment (search workers,
    ``mlflow run`` in parallel) can both miss it, and the second insert then breaks the dataset's
    primary key. The first commit wins, so the failed call is tried again and finds the dataset.
    """
    for split in data.splits:
        dataset = split_dataset(data, split)
        for attempt in range(1, attempts + 1):
            try:
                mlflow.log_input(dataset, context=split)
                break
            except mlflow.exceptions.MlflowException:
                if attempt == attempts:
                    raise
                time.sleep(0.2 * attempt)


def log_text(text: str, artifact_file: str) -> None:
    mlflow.log_text(text, artifact_file)


def log_json(payload: Any, artifact_file: str) -> None:
    mlflow.log_dict(json.loads(json.dumps(payload, default=str)), artifact_file)


def log_artifacts(local_dir: str | os.PathLike, artifact_path: str | None = None) -> None:
    mlflow.log_artifacts(str(local_dir), artifact_path)


def scratch_dir(prefix: str) -> tempfile.TemporaryDirectory:
    """A temporary folder for files to log (removed when the context ends)."""
    return tempfile.TemporaryDirectory(prefix=f"findistill-{prefix}-")
