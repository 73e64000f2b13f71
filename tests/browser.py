"""Headless Chromium for the tests that render HTML (the comparison dashboard).

:func:`chromium_or_skip` finds a Chromium binary, installing Debian's ``chromium`` package with apt-get when it is
missing and that is allowed (root, or passwordless sudo), as tests/pg_server.py does for PostgreSQL, and skips the
test saying why otherwise. :class:`Chromium` runs it headless on a local file, with host names unresolvable so a page
that needs the network shows it: the DOM once scripts ran (:meth:`Chromium.dump_dom`) and a screenshot.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from debian_packages import apt_install

#: binaries tried in this order on PATH
NAMES = ("chromium", "chromium-browser", "google-chrome-stable", "google-chrome")
#: seconds one Chromium run may take
TIMEOUT_S = 60


def find_chromium() -> str | None:
    """The first of :data:`NAMES` on PATH, or None."""
    return next((path for path in map(shutil.which, NAMES) if path), None)


@dataclass(frozen=True)
class Chromium:
    """A Chromium binary run headless, without sandbox (needed as root) or GPU, in a fresh profile per run."""

    binary: str

    def run(self, page: Path, *flags: str) -> subprocess.CompletedProcess[str]:
        """Opens the local file ``page`` with ``flags`` added; raises with Chromium's stderr when it fails."""
        with tempfile.TemporaryDirectory(prefix="findistill-chromium-") as profile:
            command = [self.binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                       "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={profile}",
                       "--host-resolver-rules=MAP * ~NOTFOUND", *flags, Path(page).resolve().as_uri()]
            done = subprocess.run(command, check=False, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                                  timeout=TIMEOUT_S)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
        return done

    def dump_dom(self, page: Path, size: tuple[int, int] = (1400, 1100), budget_ms: int = 10_000) -> str:
        """The serialized DOM of ``page`` in a window of ``size`` (width, height in CSS px) after its scripts had
        ``budget_ms`` of virtual time."""
        return self.run(page, f"--virtual-time-budget={budget_ms}", f"--window-size={size[0]},{size[1]}",
                        "--dump-dom").stdout

    def screenshot(self, page: Path, png: Path, size: tuple[int, int] = (1400, 1100),
                   budget_ms: int = 10_000) -> Path:
        """Writes a PNG of the first ``size`` (width, height in CSS px) of ``page`` to ``png``; returns ``png``."""
        png.parent.mkdir(parents=True, exist_ok=True)
        self.run(page, f"--virtual-time-budget={budget_ms}", f"--screenshot={png.resolve()}",
                 f"--window-size={size[0]},{size[1]}")
        return png


def chromium_or_skip() -> Chromium:
    """A :class:`Chromium`, installing the Debian package when missing and allowed; skips the test otherwise."""
    binary = find_chromium()
    note = f"none of {', '.join(NAMES)} on PATH"
    if binary is None:
        note += "; " + apt_install("chromium")
        binary = find_chromium()
    if binary is None:
        pytest.skip(f"Chromium unavailable: {note}")
    return Chromium(binary)
