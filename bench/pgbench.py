"""Running pgbench on a script of our own: the baselines of the `orders` and `inventory` scenarios."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench import report

PGBENCH = "/usr/lib/postgresql/15/bin/pgbench"


def require_pgbench() -> None:
    if not Path(PGBENCH).exists():
        raise SystemExit(
            f"bench: no {PGBENCH}: bash -c '. ops/local/lib.sh && ensure_debs postgresql-contrib'"
        )


def run_pgbench(
    db_url: str, script: str, variables: Mapping[str, str], clients: int, seconds: int, name: str
) -> dict[str, Any]:
    """`script` with -M prepared (the cheapest way pgbench can send it), `clients` connections for
    `seconds`; transactions per second and latency as pgbench reports them."""
    threads = min(clients, os.cpu_count() or 1)
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as file:
        file.write(script)
    command = [PGBENCH, "-n", "-M", "prepared", "-c", str(clients), "-j", str(threads), "-T", str(seconds)]
    command += ["-f", file.name]
    for key, value in variables.items():
        command += ["-D", f"{key}={value}"]
    try:
        done = subprocess.run([*command, db_url], capture_output=True, text=True, check=False)
    finally:
        Path(file.name).unlink()
    if done.returncode != 0:
        raise SystemExit(f"bench: pgbench failed:\n{done.stdout}\n{done.stderr}")
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", done.stdout)
    latency = re.search(r"latency average = ([\d.]+) ms", done.stdout)
    processed = re.search(r"number of transactions actually processed: (\d+)", done.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", done.stdout)
    if not tps:
        raise SystemExit(f"bench: no tps in pgbench's output:\n{done.stdout}")
    return {
        "tool": report.pg_version_of(PGBENCH),
        "clients": clients,
        "threads": threads,
        "seconds": seconds,
        "tps": float(tps[1]),
        "latency_avg_ms": float(latency[1]) if latency else None,
        "transactions": int(processed[1]) if processed else None,
        "failed": int(failed[1]) if failed else 0,
        "script": f"{name} (-M prepared)",
    }
