"""The gateway's rate limiter on the real Redis: GCRA budgets, shared between gateways, and what
happens when Redis does not answer (open for queries, closed for auth)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web

from shop.http.app import create_gateway_app
from shop.http.ratelimit import ClientAddress, Policy, RedisRateLimiter, rate_limit_middleware
from shop.observability.readiness import Readiness
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
    middleware = rate_limit_middleware(limiter, policies, ClientAddress(["127.0.0.1"]))
    readiness = Readiness({"redis": _up}, timeout=1, cache_seconds=0)
    stand: Any = _Stand()
    return create_gateway_app(readiness, LIMIT, KEYRING, VERIFIER, stand, stand, stand, middleware)


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
