"""The code passes ruff with the rules of pyproject.toml, run by the release pinned there."""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import REPO


def _pinned_ruff() -> str:
    test_extra = re.search(r"^test = \[(.*)\]$", (REPO / "pyproject.toml").read_text(), re.MULTILINE)
    assert test_extra, "pyproject.toml should declare the test extra on one line: test = [...]"
    pins = re.findall(r'"ruff==([^"]+)"', test_extra.group(1))
    assert len(pins) == 1, f"the test extra of pyproject.toml should pin ruff once (ruff==X.Y.Z): {test_extra.group(0)}"
    return pins[0]


def _ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ruff", *args], cwd=REPO, capture_output=True, text=True)


def test_the_code_passes_the_pinned_ruff():
    pinned = _pinned_ruff()
    version = _ruff("--version")
    assert version.returncode == 0, f"ruff is not installed: pip install -e '.[test]' ({version.stderr.strip()})"
    assert version.stdout.split()[-1] == pinned, (
        f"{version.stdout.strip()} is installed, pyproject.toml pins ruff=={pinned}: pip install -e '.[test]'")
    check = _ruff("check", "--output-format", "concise", ".")
    assert check.returncode == 0, check.stdout + check.stderr
