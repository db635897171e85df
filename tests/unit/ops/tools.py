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


def run_from_root(
    args: list[str], timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`args` run in the repository's root, their output kept as text; a failure is the caller's to judge."""
    return subprocess.run(
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def run_promtool(promtool: str, *args: str) -> str:
    """promtool's output (stdout, then stderr) under the command; it must succeed."""
    done = run_from_root([promtool, *args])
    output = f"$ promtool {' '.join(args)}\n{done.stdout}{done.stderr}"
    assert done.returncode == 0, output
    return output


def ensure_deb(package: str, program: str) -> str:
    """The program's path, installing Debian's package (ops/local/lib.sh's ensure_debs) if needed."""
    found = shutil.which(program)
    if found is None:
        done = run_from_root(["bash", "-c", f". ops/local/lib.sh && ensure_debs {package}"], timeout=840)
        assert done.returncode == 0, f"installing {package} failed:\n{done.stdout}\n{done.stderr}"
        found = shutil.which(program)
        assert found is not None, f"the {package} package was installed but {program} is not on PATH"
    return found
