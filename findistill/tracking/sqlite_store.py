"""MLflow's SQLite stores, built one process at a time so that parallel first uses of a new database succeed.

Building MLflow's tracking or model-registry store on an SQLite file creates its tables when they are
missing (``create_all`` and then the Alembic migrations) and then adds the Default experiment. Nothing
serialises that between processes: when several processes (parallel ``mlflow run`` launchers, a sweep's
workers) open a database that does not exist yet, they migrate it at the same time and all but one fail
(``duplicate column name``, ``Online migration expected to match one row``).

MLflow looks up store builders by URI scheme and lets packages replace them through the entry-point groups
``mlflow.tracking_store`` and ``mlflow.model_registry_store``; findistill registers the two builders below
for ``sqlite`` (pyproject.toml). Each calls MLflow's own builder for the scheme, so the store is exactly
the one MLflow builds, while holding an exclusive lock (``flock``) on ``<database file>.lock``: the first
process creates the tables, the others wait and find them. The lock covers only the construction; later
reads and writes are SQLite's own business (MLflow's sessions wait up to 20 s on a locked database,
``PRAGMA busy_timeout``). In-memory databases belong to one process and are built without a lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy.engine import make_url


def lock_path(store_uri: str) -> Path | None:
    """The lock file beside the database file of an ``sqlite:`` URI; None for an in-memory database."""
    url = make_url(store_uri)
    database = url.database or ""
    if url.query.get("uri") == "true":  # a SQLite URI filename: file:path?mode=...
        if url.query.get("mode") == "memory":
            return None
        database = urllib.parse.urlparse(database).path
    if database in ("", ":memory:"):
        return None
    return Path(f"{database}.lock")


@contextlib.contextmanager
def creation_lock(store_uri: str) -> Iterator[None]:
    """Hold an exclusive lock on the database's lock file (created, with its folder, if missing)."""
    path = lock_path(store_uri)
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:  # the lock is released when the file is closed
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def tracking_store(store_uri: str, artifact_uri: str | None = None):
    """MLflow's tracking store for ``store_uri`` (entry point ``mlflow.tracking_store``, scheme ``sqlite``)."""
    # MLflow's default builder for database URIs: it picks the store class (workspaces or not) and the
    # default artifact root (./mlruns, or the server's) when artifact_uri is None.
    from mlflow.tracking._tracking_service.utils import _get_sqlalchemy_store

    with creation_lock(store_uri):
        return _get_sqlalchemy_store(store_uri, artifact_uri)


def registry_store(store_uri: str):
    """MLflow's model-registry store for ``store_uri`` (entry point ``mlflow.model_registry_store``, scheme
    ``sqlite``)."""
    from mlflow.tracking._model_registry.utils import _get_sqlalchemy_store

    with creation_lock(store_uri):
        return _get_sqlalchemy_store(store_uri)
