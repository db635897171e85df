"""`python -m bench.overhead`: what the gateway's middlewares cost on one authenticated request, and
the gateway's requests per second against HAProxy proxying the same backend.

One server process (`python -m bench.overhead serve`) answers the same authenticated
`GET /api/v1/auth/me` with the same handler (verify the Ed25519 token, answer the caller as JSON)
on two ports, and an HAProxy (the Debian package, installed with ops/local/lib.sh's `ensure_debs`
when missing) runs in the foreground on a third. Three targets:

- bare: the handler alone, in a bare aiohttp app;
- haproxy: HAProxy in HTTP mode, keep-alive on both sides, proxying to bare;
- gateway: built by `create_gateway_app` with every middleware and hook the gateway runs (request
  id, metrics, error envelope, body limit, identity, the Redis rate limiter, header stripping, the
  contract check of access and parameters, security and rate-limit headers).

The load generator runs against each in turn, alternating every round, in the same run and on the
same cores. Two phases by default: one connection (the added latency at p50, gateway against bare,
which the target bounds at 1.5 ms, and haproxy against bare; the round with the lowest p50 of each
counts) and 16 connections (requests per second of bare, haproxy and gateway; the fastest round of
each counts). Client, backend and HAProxy share the machine's cores, so the figures compare the
three; they are no ceiling for any of them. Every run's figures also go to var/bench/overhead.json.
Needs Redis (`make up`).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.load import LoadResult, run_load
from harness.processes import free_port, stop
from shop.observability.tracing import export_configured

PATH = "/api/v1/auth/me"
TARGETS = ("bare", "haproxy", "gateway")
TARGET_ADDED_P50_MS = 1.5  # the issue's target: the middlewares add at most this at p50
ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "var" / "bench" / "overhead.json"

# nbthread 1: the machine has two cores, shared by the load generator and the backend (one Python
# process each, one event loop each) and HAProxy. One HAProxy thread proxies far more than the Python
# backend answers, so a second one would only take CPU time from the other two; one thread is also
# what the gateway gets (one process, one event loop). Keep-alive on both sides, idle connections to
# the backend reused by any client connection (`http-reuse always`: every request is the same, with
# the same token). No `log` line: nothing is logged.
HAPROXY_CONFIG = """\
global
    nbthread 1
    maxconn 1024

defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout http-request 10s
    timeout http-keep-alive 30s

frontend bench
    bind 127.0.0.1:{port}
    default_backend bare

backend bare
    server bare 127.0.0.1:{backend_port}
"""


async def _serve() -> None:
    import redis.asyncio as aioredis

    from shop.http.app import create_gateway_app
    from shop.http.auth import require_principal
    from shop.http.ratelimit import Policy, RedisRateLimiter, rate_limit_middleware
    from shop.observability.readiness import Readiness
    from shop.observability.tracing import configure_tracing
    from shop.security.keys import KeyRing
    from shop.security.tokens import TokenIssuer, TokenVerifier
    from shop.settings import Settings

    # As `shop run gateway` does: spans exported when OTEL_* name an endpoint (make's with-env does),
    # none with OTEL_SDK_DISABLED=true. The bare handler makes no spans either way.
    configure_tracing("bench-gateway")
    keyring = KeyRing.of({"bench": Ed25519PrivateKey.generate()}, "bench")
    verifier = TokenVerifier(keyring, "shop", "shop-api")
    token, _ = TokenIssuer(keyring, "shop", "shop-api", 3600).issue(uuid.uuid4(), ["customer"], "b@x.test")

    async def me(request: web.Request) -> web.Response:
        principal = require_principal(request)
        return web.json_response({"id": str(principal.user_id), "roles": sorted(principal.roles)})

    async def bare_me(request: web.Request) -> web.Response:
        claims = verifier.verify(request.headers["Authorization"].split(" ", 1)[1])
        return web.json_response({"id": str(claims.user_id), "roles": sorted(claims.roles)})

    class Auth:
        def __getattr__(self, name: str) -> Any:
            return me

    bare = web.Application()
    bare.router.add_get(PATH, bare_me)
    redis_client = aioredis.from_url(Settings.from_env(os.environ).redis_url, socket_timeout=0.25)
    limiter = rate_limit_middleware(
        RedisRateLimiter(redis_client, prefix=f"bench-{uuid.uuid4().hex}"),
        {"auth": Policy("auth", 10_000_000, 60)},  # never refuses: its cost is measured, not its effect
    )
    readiness = Readiness({}, timeout=1)
    auth: Any = Auth()
    gateway = create_gateway_app(readiness, 1 << 20, keyring, verifier, auth, None, None, limiter)
    ports = {}
    for name, app in (("bare", bare), ("gateway", gateway)):
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        ports[name] = free_port()
        await web.TCPSite(runner, "127.0.0.1", ports[name]).start()
    print(json.dumps({"token": token, **ports}), flush=True)
    await asyncio.Event().wait()


def _haproxy_binary() -> str:
    """The haproxy executable, installed from Debian (ops/local/lib.sh `ensure_debs`) when missing."""
    found = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/bin")
    if found:
        return found
    print("bench: haproxy missing, installing the Debian package (ensure_debs haproxy)", flush=True)
    lib = ROOT / "ops" / "local" / "lib.sh"
    done = subprocess.run(["bash", "-c", '. "$1" && ensure_debs haproxy', "bash", str(lib)], check=False)
    found = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/bin")
    if done.returncode != 0 or not found:
        raise SystemExit(f"bench: could not install haproxy (ensure_debs exited {done.returncode})")
    return found


def _wait_accepting(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"bench: haproxy exited with {process.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"bench: haproxy never accepted on 127.0.0.1:{port}:\n{log.read_text()}")


@contextmanager
def haproxy(binary: str, backend_port: int) -> Iterator[tuple[int, str]]:
    """Our own HAProxy in the foreground (`-db`, never the Debian service), its config checked first,
    on a free loopback port, proxying to `backend_port`: yields (port, config); stopped on exit."""
    port = free_port()
    config = HAPROXY_CONFIG.format(port=port, backend_port=backend_port)
    with tempfile.TemporaryDirectory(prefix="bench-haproxy-") as tmp:
        path, log = Path(tmp) / "haproxy.cfg", Path(tmp) / "haproxy.log"
        path.write_text(config)
        check = subprocess.run([binary, "-c", "-f", str(path)], capture_output=True, text=True)
        if check.returncode != 0:
            raise SystemExit(f"bench: haproxy refused its config:\n{check.stdout}{check.stderr}")
        with log.open("wb") as output:
            process = subprocess.Popen(
                [binary, "-f", str(path), "-db"], stdin=subprocess.DEVNULL, stdout=output, stderr=output
            )
        try:
            _wait_accepting(port, process, log)
            yield port, config
        finally:
            stop(process, 10)


def _record(result: LoadResult) -> dict[str, Any]:
    return {**dataclasses.asdict(result), "rate": result.rate}


def _best(connections: int, results: list[LoadResult]) -> LoadResult:
    """The best round: on one connection the lowest p50 (the figure compared), else the highest rate."""
    if connections == 1:
        return min(results, key=lambda r: r.p50_ms)
    return max(results, key=lambda r: r.rate)


def _summary(connections: int, best: dict[str, LoadResult]) -> tuple[str, dict[str, Any]]:
    bare, proxied, gateway = best["bare"], best["haproxy"], best["gateway"]
    if connections == 1:
        added, proxy_added = gateway.p50_ms - bare.p50_ms, proxied.p50_ms - bare.p50_ms
        line = (
            f"1 connection: middlewares add {added:.2f} ms at p50 (bare {bare.p50_ms:.2f} → gateway"
            f" {gateway.p50_ms:.2f} ms); haproxy adds {proxy_added:.2f} ms"
            f" ({bare.p50_ms:.2f} → {proxied.p50_ms:.2f} ms)"
        )
        return line, {"middlewares_added_p50_ms": added, "haproxy_added_p50_ms": proxy_added}
    ratio = gateway.rate / proxied.rate if proxied.rate else 0.0
    line = (
        f"{connections} connections: bare {bare.rate:,.0f} req/s, haproxy→bare {proxied.rate:,.0f} req/s,"
        f" gateway {gateway.rate:,.0f} req/s (gateway/haproxy = {ratio:.2f})"
    )
    return line, {"gateway_over_haproxy_rate": ratio}


def _run(args: argparse.Namespace) -> dict[str, Any]:
    binary = _haproxy_binary()
    version = subprocess.run([binary, "-v"], capture_output=True, text=True, check=True).stdout
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.overhead", "serve"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        info = json.loads(server.stdout.readline())
        headers = {"Authorization": f"Bearer {info['token']}"}
        with haproxy(binary, info["bare"]) as (proxy_port, config):
            ports = {"bare": info["bare"], "haproxy": proxy_port, "gateway": info["gateway"]}
            phases: list[dict[str, Any]] = []
            lines: list[str] = []
            for connections in args.connections:
                print(
                    f"\n{connections} connection(s), {args.rounds} round(s) of {args.seconds:g} s", flush=True
                )
                runs: dict[str, list[LoadResult]] = {name: [] for name in TARGETS}
                for _ in range(args.rounds):
                    for name in TARGETS:
                        url = f"http://127.0.0.1:{ports[name]}{PATH}"
                        result = asyncio.run(
                            run_load(name, url, connections, args.seconds, 10_000_000, 200, headers)
                        )
                        print(result.line(), flush=True)
                        runs[name].append(result)
                best = {name: _best(connections, results) for name, results in runs.items()}
                line, figures = _summary(connections, best)
                lines.append(line)
                phases.append(
                    {
                        "connections": connections,
                        "runs": {name: [_record(r) for r in results] for name, results in runs.items()},
                        "best_by": "lowest p50_ms" if connections == 1 else "highest rate",
                        "best": {name: _record(r) for name, r in best.items()},
                        **figures,
                    }
                )
    finally:
        stop(server, 10)
    return {
        "gateway_traces_exported": export_configured(os.environ),
        "haproxy": {"version": version.splitlines()[0], "config": config},
        "phases": phases,
        "summary": lines,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.overhead",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("mode", nargs="?", choices=["serve"], help=argparse.SUPPRESS)
    # One connection: the added latency itself; with more, a closed loop adds queueing to every target,
    # and what counts is the rate.
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 16], help="one phase each")
    parser.add_argument("--seconds", type=float, default=4.0, help="per target, round and phase")
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternate bare/haproxy/gateway this many times"
    )
    args = parser.parse_args()
    if args.mode == "serve":
        asyncio.run(_serve())
        return 0
    started, clock = datetime.now(UTC), time.monotonic()
    results = _run(args)
    elapsed = time.monotonic() - clock
    print()
    print(f"gateway spans exported over OTLP: {'yes' if results['gateway_traces_exported'] else 'no'}")
    for line in results["summary"]:
        print(line)
    added = next((p["middlewares_added_p50_ms"] for p in results["phases"] if p["connections"] == 1), None)
    if added is not None:
        verdict = "met" if added <= TARGET_ADDED_P50_MS else "MISSED"
        print(f"target: middlewares add at most {TARGET_ADDED_P50_MS} ms at p50: {verdict} ({added:.2f} ms)")
    errors = sum(r["errors"] for p in results["phases"] for rs in p["runs"].values() for r in rs)
    if errors:
        print(f"warning: {errors} request(s) failed; their rates count successes only")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "started_at": started.isoformat(),
        "elapsed_s": elapsed,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "settings": {"connections": args.connections, "seconds": args.seconds, "rounds": args.rounds},
        "path": PATH,
        "target_added_p50_ms": TARGET_ADDED_P50_MS,
        **results,
    }
    OUT.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    print(f"({elapsed:.0f} s; every run in {OUT.relative_to(ROOT)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
