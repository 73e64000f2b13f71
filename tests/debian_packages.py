"""Debian packages the tests need (PostgreSQL, Chromium), installed with apt-get when missing and allowed."""

from __future__ import annotations

import os
import shutil
import subprocess


def apt_install(package: str) -> str:
    """Tries ``apt-get install package`` (then update and install again); returns a note on what happened."""
    if shutil.which("apt-get") is None:
        return "apt-get not found"
    if os.geteuid() == 0:
        prefix: list[str] = []
    elif shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], check=False,
                                                 capture_output=True).returncode == 0:
        prefix = ["sudo", "-n"]
    else:
        return "not root and sudo -n not allowed, so apt-get was not run"
    apt = [*prefix, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get"]
    install = [*apt, "install", "-y", "--no-install-recommends", package]
    if subprocess.run(install, check=False, capture_output=True, stdin=subprocess.DEVNULL).returncode == 0:
        return f"apt-get install {package} succeeded"
    subprocess.run([*apt, "update"], check=False, capture_output=True, stdin=subprocess.DEVNULL)
    done = subprocess.run(install, check=False, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if done.returncode == 0:
        return f"apt-get install {package} succeeded after apt-get update"
    last = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return f"apt-get update + install {package} failed ({last})"
