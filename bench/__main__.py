"""`python -m bench`: starts a gateway on a free port against the local stack and loads it.

Needs the stack up (`make up`); `make bench` does that first. Client and server share the
machine's two cores, so the figures are a floor for the gateway, not a ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys

from bench.load import run_load
from bench.processes import free_port, stop, wait_ready

SCENARIOS = {
    # The floor of every route: middlewares (request id, metrics, errors, body limit) and JSON.
    "gateway /healthz": ("/healthz", 200),
    # Readiness with its 1 s cache: what a load balancer's probe costs.
    "gateway /readyz": ("/readyz", 200),
    "gateway 404 envelope": ("/api/v1/nothing", 404),
}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=5.0, help="per scenario")
    parser.add_argument("--max-requests", type=int, default=200_000, help="per scenario")
    args = parser.parse_args()

    port = free_port()
    env = {**os.environ, "SHOP_GATEWAY_PORT": str(port)}
    # The access log stays on, as in production; it just does not go to this terminal.
    gateway = subprocess.Popen(
        [sys.executable, "-m", "shop", "run", "gateway"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base + "/readyz")
        print(f"gateway on {base}; {args.connections} connections, {args.seconds:g} s per scenario")
        for name, (path, status) in SCENARIOS.items():
            result = asyncio.run(
                run_load(name, base + path, args.connections, args.seconds, args.max_requests, status)
            )
            print(result.line())
    finally:
        stop(gateway, 15)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
