"""A throwaway PostgreSQL server for the tests that need one (a shared Optuna study, a tracking server).

The session fixture ``postgres`` finds Debian's ``initdb`` and ``pg_ctl`` (installing the ``postgresql`` package with
apt-get when they are missing and that is allowed), creates a cluster in a fresh temporary directory, starts it on
127.0.0.1 only with trust authentication, and stops it and removes the directory at the end of the session. As root,
the server binaries run as the ``postgres`` OS user, because initdb refuses to run as root.
"""

from __future__ import annotations

import glob
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from debian_packages import apt_install

HOST = "127.0.0.1"
SUPERUSER = "findistill"
OS_USER = "postgres"


@dataclass(frozen=True)
class PostgresServer:
    """Where the throwaway server listens; its superuser needs no password."""

    host: str
    port: int
    user: str
    data_dir: Path
    log_file: Path

    def url(self, database: str) -> str:
        """SQLAlchemy URL (psycopg 3 driver) of ``database`` on this server."""
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Creates database ``name`` and returns its SQLAlchemy URL."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(host=self.host, port=self.port, user=self.user, dbname="postgres", autocommit=True,
                             connect_timeout=10) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)


def _find_binaries() -> tuple[str, str] | None:
    """``(initdb, pg_ctl)`` from PATH, else from the highest version under /usr/lib/postgresql/*/bin, else None."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return initdb, pg_ctl

    def version(bin_dir: str) -> tuple[int, ...]:
        name = Path(bin_dir).parent.name
        return tuple(int(part) for part in name.split(".") if part.isdigit())

    for bin_dir in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True):
        initdb, pg_ctl = os.path.join(bin_dir, "initdb"), os.path.join(bin_dir, "pg_ctl")
        if os.access(initdb, os.X_OK) and os.access(pg_ctl, os.X_OK):
            return initdb, pg_ctl
    return None


def _as_server_user(command: list[str]) -> list[str]:
    """``command`` wrapped to run as the postgres OS user when we are root; unchanged otherwise."""
    if os.geteuid() != 0:
        return command
    if shutil.which("runuser"):
        return ["runuser", "-u", OS_USER, "--", *command]
    return ["su", OS_USER, "-s", "/bin/sh", "-c", shlex.join(command)]


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Runs a server binary (as the postgres OS user when root) with ``cwd`` that user can enter."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    return subprocess.run(_as_server_user(command), check=False, cwd=cwd, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=120)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server on 127.0.0.1 for the whole session; skips when the server binaries cannot be had."""
    binaries = _find_binaries()
    note = "initdb/pg_ctl not on PATH or under /usr/lib/postgresql/*/bin"
    if binaries is None:
        note += "; " + apt_install("postgresql")
        binaries = _find_binaries()
    if binaries is None:
        pytest.skip(f"PostgreSQL unavailable: {note}")
    initdb, pg_ctl = binaries
    as_root = os.geteuid() == 0
    if as_root:
        try:
            owner = pwd.getpwnam(OS_USER)
        except KeyError:
            pytest.skip(f"PostgreSQL unavailable: running as root and there is no {OS_USER!r} OS user to run initdb")

    # mkdtemp gives a short path (the socket path must stay under ~100 bytes) in a world-traversable /tmp.
    root = Path(tempfile.mkdtemp(prefix="findistill-pg-"))
    data_dir, socket_dir, log_file = root / "data", root / "socket", root / "server.log"
    try:
        socket_dir.mkdir()
        if as_root:
            for path in (root, socket_dir):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        init_command = [initdb, "-D", str(data_dir), "--auth=trust", "-U", SUPERUSER, "--encoding=UTF8",
                        "--locale=C"]
        if "--no-sync" in _run([initdb, "--help"], root).stdout:
            init_command.append("--no-sync")
        done = _run(init_command, root)
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")

        for _attempt in range(3):
            port = free_port()
            options = (f"-p {port} -c listen_addresses={HOST} -c unix_socket_directories={shlex.quote(str(socket_dir))}"
                       " -c fsync=off -c max_connections=100")
            done = _run([pg_ctl, "start", "-w", "-t", "60", "-D", str(data_dir), "-l", str(log_file), "-o", options],
                        root)
            if done.returncode == 0:
                break
        else:
            log = log_file.read_text(errors="replace") if log_file.exists() else ""
            raise RuntimeError(f"pg_ctl start failed ({done.returncode}):\n{done.stdout}\n{done.stderr}\n{log}")

        yield PostgresServer(host=HOST, port=port, user=SUPERUSER, data_dir=data_dir, log_file=log_file)
    finally:
        if (data_dir / "postmaster.pid").exists():
            _run([pg_ctl, "stop", "-m", "immediate", "-w", "-D", str(data_dir)], root)
        shutil.rmtree(root, ignore_errors=True)
