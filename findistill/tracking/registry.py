"""The MLflow Model Registry: versions registered only once their run's work is logged.
"""

from __future__ import annotations

from typing import Any

import mlflow
from mlflow.tracking import MlflowClient


def register(model_uri: str, name: str, tags: dict[str, Any] | None = None, alias: str | None = None) -> int:
    """Register ``model_uri`` as a new version of ``name`` (after the run's work is complete); return the version."""
    version = mlflow.register_model(model_uri, name)
    client = MlflowClient()
    for k, v in (tags or {}).items():
        client.set_model_version_tag(name, version.version, k, str(v))
    if alias:
        client.set_registered_model_alias(name, alias, version.version)
    return int(version.version)
