"""`python -m bench.overhead`: what the gateway's middlewares cost on one authenticated request.

Two apps in one server process (`python -m bench.overhead serve`), on two ports, answer the same
authenticated `GET /api/v1/auth/me` with the same handler (verify the Ed25519 token, answer the
caller as JSON): one bare (the handler alone), one built by `create_gateway_app` with every
middleware and hook the gateway runs (request id, metrics, error envelope, body limit, identity,
the Redis rate limiter, the unknown-parameter check, security and rate-limit headers). The load
generator then runs against each in turn, in the same run, on the same cores. Needs Redis (`make up`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import uuid
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.load import run_load
from bench.processes import free_port

PATH = "/api/v1/auth/me"


async def _serve() -> None:
    import redis.asyncio as aioredis

    from shop.http.app import create_gateway_app
    from shop.http.auth import require_principal
    from shop.http.ratelimit import ClientAddress, Policy, RedisRateLimiter, rate_limit_middleware
    from shop.observability.readiness import Readiness
    from shop.security.keys import KeyRing
    from shop.security.tokens import TokenIssuer, TokenVerifier
    from shop.settings import Settings

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
        ClientAddress([]),
    )
    readiness = Readiness({}, timeout=1)
    auth: Any = Auth()
    full = create_gateway_app(readiness, 1 << 20, keyring, verifier, auth, None, None, limiter)
    ports = {}
    for name, app in (("bare", bare), ("full", full)):
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        ports[name] = free_port()
        await web.TCPSite(runner, "127.0.0.1", ports[name]).start()
    print(json.dumps({"token": token, **ports}), flush=True)
    await asyncio.Event().wait()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.overhead", description=__doc__)
    parser.add_argument("mode", nargs="?", choices=["serve"], help=argparse.SUPPRESS)
    # One connection: the added latency itself; with more, a closed loop adds queueing to both.
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=2, help="alternate bare/full this many times")
    args = parser.parse_args()
    if args.mode == "serve":
        asyncio.run(_serve())
        return 0
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.overhead", "serve"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        info = json.loads(server.stdout.readline())
        headers = {"Authorization": f"Bearer {info['token']}"}
        results: dict[str, list[Any]] = {"bare": [], "full": []}
        for _ in range(args.rounds):
            for name in ("bare", "full"):
                url = f"http://127.0.0.1:{info[name]}{PATH}"
                result = asyncio.run(
                    run_load(name, url, args.connections, args.seconds, 10_000_000, 200, headers)
                )
                print(result.line(), flush=True)
                results[name].append(result)
        best = {name: max(runs, key=lambda r: r.rate) for name, runs in results.items()}
        added = best["full"].p50_ms - best["bare"].p50_ms
        bare, full = best["bare"], best["full"]
        print(
            f"\nmiddlewares add {added:.2f} ms at p50 ({bare.p50_ms:.2f} → {full.p50_ms:.2f} ms),"
            f" {bare.rate:,.0f} → {full.rate:,.0f} req/s, {args.connections} connection(s)"
        )
    finally:
        server.terminate()
        server.wait(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
