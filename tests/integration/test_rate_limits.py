"""The gateway's rate limiter on the real Redis: GCRA budgets, shared between gateways, and what
happens when Redis does not answer (open for queries, closed for auth); and the client it counts,
the one the failed-login counter counts too (on the real auth database)."""

from __future__ import annotations

import asyncio
import ipaddress
import random
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from aiohttp import web
from psycopg_pool import ConnectionPool

from shop.db import auth as auth_db
from shop.handlers.auth import AuthPolicy
from shop.http.app import create_gateway_app
from shop.http.clients import ClientAddress, client_id
from shop.http.commands import CommandBus
from shop.http.ratelimit import Policy, RedisRateLimiter, rate_limit_middleware
from shop.http.routes.auth import AuthRoutes
from shop.observability.readiness import Readiness
from shop.security.passwords import hash_password
from shop.security.throttle import LoginLimiter
from shop.security.tokens import TokenIssuer
from tests.unit.http.test_gateway_app import KEYRING, LIMIT, VERIFIER, _up


@pytest.fixture
async def redis_client(settings):
    client = aioredis.from_url(settings.redis_url)
    yield client
    await client.aclose()


async def test_a_burst_gets_the_quota_then_waits_one_interval(redis_client):
    limiter = RedisRateLimiter(redis_client, prefix=f"test-{uuid.uuid4().hex}")
    policy = Policy("orders", 5, 1)
    decisions = [await limiter.hit(policy, "user:a") for _ in range(6)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.remaining for d in decisions[:5]] == [4, 3, 2, 1, 0]
    assert 0 < decisions[5].retry_after <= 0.2
    assert (await limiter.hit(policy, "user:b")).allowed  # another client has its own budget
    await asyncio.sleep(decisions[5].retry_after + 0.02)
    assert (await limiter.hit(policy, "user:a")).allowed
    assert not (await limiter.hit(policy, "user:a")).allowed


async def test_two_gateways_share_one_budget(redis_client, settings):
    prefix = f"test-{uuid.uuid4().hex}"
    other = aioredis.from_url(settings.redis_url)
    try:
        first, second = RedisRateLimiter(redis_client, prefix), RedisRateLimiter(other, prefix)
        policy = Policy("auth", 4, 60)
        results = await asyncio.gather(*(g.hit(policy, "addr:x") for g in [first, second] * 4))
        assert sum(d.allowed for d in results) == 4
    finally:
        await other.aclose()


class _Stand:
    """Stand-in route handlers: every handler answers 200 "ok" (the limiter is what is tested)."""

    def __getattr__(self, name: str):
        async def handler(request: web.Request) -> web.Response:
            return web.json_response({"ok": name})

        return handler


def _app(limiter: RedisRateLimiter, quota: int) -> web.Application:
    policies = {name: Policy(name, quota, 60) for name in ("auth", "products", "orders")}
    middleware = rate_limit_middleware(limiter, policies)
    readiness = Readiness({"redis": _up}, timeout=1, cache_seconds=0)
    stand: Any = _Stand()
    trusted = ClientAddress(["127.0.0.1"])
    return create_gateway_app(readiness, LIMIT, KEYRING, VERIFIER, stand, stand, stand, middleware, trusted)


async def test_limited_routes_carry_the_headers_and_a_429_has_retry_after(aiohttp_client, redis_client):
    client = await aiohttp_client(_app(RedisRateLimiter(redis_client, f"test-{uuid.uuid4().hex}"), 2))
    answers = [await client.get("/api/v1/products") for _ in range(3)]
    assert [a.status for a in answers] == [200, 200, 429]
    assert answers[0].headers["RateLimit-Policy"] == '"products";q=2;w=60'
    assert answers[0].headers["RateLimit"].startswith('"products";r=1;t=')
    refused = answers[2]
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["RateLimit"].startswith('"products";r=0;')
    body = await refused.json()
    assert body["error"]["code"] == "rate_limited"
    # Behind a trusted proxy each forwarded client has its own budget; health and the OpenAPI
    # document are not limited.
    assert (await client.get("/api/v1/products", headers={"X-Forwarded-For": "198.51.100.7"})).status == 200
    # Hop-by-hop headers make the gateway strip them on a clone of the request: the answer still
    # carries the limiter's headers (a clone made before the limiter once lost them).
    hop = {"X-Forwarded-For": "198.51.100.8", "Connection": "keep-alive, X-Hop", "X-Hop": "1"}
    assert (
        (await client.get("/api/v1/products", headers=hop)).headers["RateLimit"].startswith('"products";r=1;')
    )
    assert "RateLimit" not in (await client.get("/api/v1/openapi.json")).headers
    assert "RateLimit" not in (await client.get("/healthz")).headers


async def test_without_redis_queries_pass_and_auth_is_refused(aiohttp_client):
    unreachable = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2, socket_timeout=0.2)
    try:
        client = await aiohttp_client(_app(RedisRateLimiter(unreachable), 2))
        assert (await client.get("/api/v1/products")).status == 200
        refused = await client.post("/api/v1/auth/login", json={})
        assert refused.status == 503
        assert (await refused.json())["error"]["code"] == "rate_limiter_unavailable"
        assert refused.headers["Cache-Control"] == "no-store"
    finally:
        await unreachable.aclose()


async def test_metrics_name_the_route_template_and_context_never_the_raw_path(aiohttp_client, redis_client):
    client = await aiohttp_client(_app(RedisRateLimiter(redis_client, f"test-{uuid.uuid4().hex}"), 1))
    product = uuid.uuid4()
    await client.get(f"/api/v1/products/{product}")
    await client.get(f"/api/v1/products/{product}")  # over the quota of 1
    text = await (await client.get("/metrics")).text()
    route = 'route="/api/v1/products/{product_id}"'
    assert f'shop_http_requests_total{{context="products",method="GET",{route},status="200"}}' in text
    assert f'shop_http_requests_total{{context="products",method="GET",{route},status="429"}}' in text
    assert "shop_http_request_duration_seconds_bucket{context=" in text
    assert "shop_http_requests_in_flight" in text
    assert 'shop_rate_limit_rejections_total{group="products"}' in text
    assert str(product) not in text


# --- one client, counted alike by the rate limiter and the failed-login counter ---------------------

PASSWORD = "correct horse battery staple"


def _verified_account(pool: ConnectionPool) -> str:
    email = f"clients-{uuid.uuid4().hex[:12]}@example.test"
    now = datetime.now(UTC)
    with pool.connection() as conn:
        user_id = uuid.uuid4()
        assert auth_db.insert_user(conn, user_id, email, hash_password(PASSWORD), now)
        auth_db.mark_verified(conn, user_id, now)
    return email


def _random_ipv4() -> str:
    # 100.64.0.0/10 (shared address space): counters live an hour in the shared Redis, so every run
    # uses addresses of its own.
    return str(ipaddress.IPv4Address(int(ipaddress.IPv4Address("100.64.0.0")) + random.getrandbits(22)))


def _random_ipv6_64() -> str:
    """A /64 of 2001:db8::/32, as the prefix of its addresses ("2001:db8:a:b:")."""
    a, b = random.getrandbits(16), random.getrandbits(16)
    return f"2001:db8:{a:x}:{b:x}:"


@pytest.fixture
def auth_pool(settings):
    with ConnectionPool(settings.databases["auth"].primary_url, min_size=1, max_size=4) as pool:
        yield pool


@pytest.fixture
async def login_gateway(aiohttp_client, settings, auth_pool, redis_client):
    """The gateway with its real login (auth PostgreSQL, the failed-login counters in Redis: 3 per
    client, many per account) behind a trusted proxy (the test client's 127.0.0.1)."""
    counters = redis.Redis.from_url(settings.redis_url)
    executor = ThreadPoolExecutor(4)
    routes = AuthRoutes(
        actors=None,  # type: ignore[arg-type]  # login sends no command
        commands=CommandBus(executor, timeout=5),
        primary=auth_pool,
        replica=None,  # type: ignore[arg-type]  # login reads the primary only
        primary_async=None,  # type: ignore[arg-type]
        reads=None,  # type: ignore[arg-type]
        policy=AuthPolicy("pepper", timedelta(days=1)),
        clock=lambda: datetime.now(UTC),
        issuer=TokenIssuer(KEYRING, "shop", "shop-api", 900),
        throttle=LoginLimiter(counters, per_account=1000, per_client=3),
    )
    policies = {name: Policy(name, 1000, 60) for name in ("auth", "products", "orders")}
    limiter = rate_limit_middleware(RedisRateLimiter(redis_client, f"test-{uuid.uuid4().hex}"), policies)
    readiness = Readiness({"redis": _up}, timeout=1, cache_seconds=0)
    app = create_gateway_app(
        readiness, LIMIT, KEYRING, VERIFIER, routes, None, None, limiter, ClientAddress(["127.0.0.1"])
    )
    used: list[str] = []
    try:
        yield await aiohttp_client(app), used
    finally:
        limiter_keys = LoginLimiter(counters, 1, 1)
        # 127.0.0.1 too: where every failure went when login counted the proxy.
        keys = [limiter_keys.keys("", client)["client"] for client in [*used, "127.0.0.1"]]
        counters.delete(*keys)
        counters.close()
        executor.shutdown(wait=True)


async def _login(client, email: str, password: str, forwarded: str) -> int:
    answer = await client.post(
        "/api/v1/auth/login",
        json={"email": email, "password": password},
        headers={"X-Forwarded-For": forwarded},
    )
    return answer.status


async def test_failed_logins_from_many_clients_behind_a_proxy_lock_out_nobody_else(login_gateway, auth_pool):
    client, used = login_gateway
    email = _verified_account(auth_pool)
    strangers = [_random_ipv4() for _ in range(8)]  # more failures than one client may have
    used.extend(strangers)
    for stranger in strangers:
        assert await _login(client, email, "wrong password!", stranger) == 401
        assert await _login(client, f"nobody-{uuid.uuid4().hex}@example.test", "wrong!", stranger) == 401
    honest = _random_ipv4()
    used.append(honest)
    assert await _login(client, email, PASSWORD, honest) == 200


async def test_failed_logins_lock_out_the_client_that_failed_and_only_it(login_gateway, auth_pool):
    client, used = login_gateway
    email = _verified_account(auth_pool)
    guesser, honest = _random_ipv4(), _random_ipv4()
    used.extend([guesser, honest])
    for _ in range(3):
        assert await _login(client, email, "wrong password!", guesser) == 401
    assert await _login(client, email, PASSWORD, guesser) == 429  # locked, right password included
    assert await _login(client, email, PASSWORD, honest) == 200


async def test_an_ipv6_client_is_locked_out_by_its_64_not_by_one_address(login_gateway, auth_pool):
    client, used = login_gateway
    email = _verified_account(auth_pool)
    network, neighbour = _random_ipv6_64(), _random_ipv6_64()
    used.extend(client_id(f"{prefix}:1") for prefix in (network, neighbour))
    for host in ("1", "2", "abcd"):  # rotating addresses inside one /64
        assert await _login(client, email, "wrong password!", f"{network}:{host}") == 401
    assert await _login(client, email, PASSWORD, f"{network}:ffff") == 429
    assert await _login(client, email, PASSWORD, f"{neighbour}:1") == 200
