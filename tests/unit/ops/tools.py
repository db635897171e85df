"""Tools the ops checks need, installed from Debian the stack's way when missing: never skipped."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

# The modules that define the shop's metrics (prometheus_client registers them on import).
METRIC_MODULES = [
    "shop.http.middlewares",
    "shop.http.ratelimit",
    "shop.http.commands",
    "shop.http.freshness",
    "shop.actors.observability",
    "shop.actors.mail",
    "shop.streams.runner",
    "shop.streams.lanes",
    "shop.relay",
    "shop.processes.sweeper",
    "shop.handlers.timers",
]


def ensure_deb(package: str, program: str) -> str:
    """The program's path, installing Debian's package (ops/local/lib.sh's ensure_debs) if needed."""
    found = shutil.which(program)
    if found is None:
        done = subprocess.run(
            ["bash", "-c", f". ops/local/lib.sh && ensure_debs {package}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=840,
            check=False,
        )
        assert done.returncode == 0, f"installing {package} failed:\n{done.stdout}\n{done.stderr}"
        found = shutil.which(program)
        assert found is not None, f"the {package} package was installed but {program} is not on PATH"
    return found
