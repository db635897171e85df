"""Fixtures of the ops checks."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def promtool() -> str:
    """Debian's prometheus package, installed the stack's way when missing (root, apt), never skipped."""
    found = shutil.which("promtool")
    if found is None:
        done = subprocess.run(
            ["bash", "-c", ". ops/local/lib.sh && ensure_debs prometheus"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=840,
            check=False,
        )
        assert done.returncode == 0, f"installing prometheus failed:\n{done.stdout}\n{done.stderr}"
        found = shutil.which("promtool")
        assert found is not None, "the prometheus package was installed but promtool is not on PATH"
    return found
