"""The gateway's shared behaviour, on an in-process server with stand-in dependency checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shop.http.app import create_gateway_app
from shop.http.openapi import DOCUMENT
from shop.observability.readiness import Readiness
from shop.security.keys import KeyRing
from shop.security.tokens import TokenVerifier

LIMIT = 1024
KEYRING = KeyRing.of({"test": Ed25519PrivateKey.generate()}, "test")
VERIFIER = TokenVerifier(KEYRING, "shop", "shop-api")


def gateway(readiness: Readiness, auth=None, products=None, orders=None, admin=None) -> web.Application:
    return create_gateway_app(readiness, LIMIT, KEYRING, VERIFIER, auth, products, orders, admin=admin)


async def _up() -> None:
    return None


async def _down() -> None:
    raise ConnectionError("refused")


@pytest.fixture
async def client(aiohttp_client) -> TestClient:
    readiness = Readiness({"redis": _up, "kafka": _up}, timeout=1, cache_seconds=0)
    app = gateway(readiness)

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("bug with postgresql://u:secret@h/db")

    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read())

    app.router.add_get("/boom", boom)
    app.router.add_post("/echo", echo)
    return await aiohttp_client(app)


def _assert_error(body: dict, code: str, request_id: str) -> None:
    assert set(body) >= {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert body["error"]["request_id"] == request_id


async def test_unknown_route_is_a_404_in_the_error_shape(client):
    response = await client.get("/nope")
    assert response.status == 404
    _assert_error(await response.json(), "not_found", response.headers["X-Request-Id"])


async def test_wrong_method_is_a_405_that_keeps_allow(client):
    response = await client.post("/healthz")
    assert response.status == 405
    assert "GET" in response.headers["Allow"]
    _assert_error(await response.json(), "method_not_allowed", response.headers["X-Request-Id"])


async def test_a_declared_body_over_the_limit_is_a_413_before_it_is_read(client):
    response = await client.post("/echo", data=b"x" * (LIMIT + 1))
    assert response.status == 413
    _assert_error(await response.json(), "payload_too_large", response.headers["X-Request-Id"])


async def test_a_chunked_body_over_the_limit_is_a_413_too(client):
    async def chunks():
        for _ in range(4):
            yield b"y" * (LIMIT // 2)

    response = await client.post("/echo", data=chunks())
    assert response.status == 413
    _assert_error(await response.json(), "payload_too_large", response.headers["X-Request-Id"])


async def test_a_body_within_the_limit_passes(client):
    response = await client.post("/echo", data=b"x" * LIMIT)
    assert response.status == 200


async def test_an_unhandled_error_is_a_500_without_details(client):
    response = await client.get("/boom")
    assert response.status == 500
    body = await response.json()
    _assert_error(body, "internal_error", response.headers["X-Request-Id"])
    assert "secret" not in await response.text()


async def test_a_sane_client_request_id_is_echoed(client):
    response = await client.get("/healthz", headers={"X-Request-Id": "trace-42.a:b"})
    assert response.headers["X-Request-Id"] == "trace-42.a:b"


@pytest.mark.parametrize("offered", ["", "has space", "x" * 200, "semi;colon", 'quote"d'])
async def test_an_odd_client_request_id_is_replaced(client, offered):
    response = await client.get("/healthz", headers={"X-Request-Id": offered})
    assert response.headers["X-Request-Id"] != offered
    assert len(response.headers["X-Request-Id"]) == 32


async def test_every_answer_gets_a_fresh_request_id(client):
    a = (await client.get("/healthz")).headers["X-Request-Id"]
    b = (await client.get("/healthz")).headers["X-Request-Id"]
    assert a != b


async def test_healthz(client):
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_readyz_lists_each_dependency(client):
    response = await client.get("/readyz")
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "ready"
    assert body["checks"]["redis"]["status"] == "up"
    assert body["checks"]["kafka"]["status"] == "up"


async def test_readyz_is_503_naming_what_is_down(aiohttp_client):
    readiness = Readiness({"redis": _up, "kafka": _down}, timeout=1, cache_seconds=0)
    client = await aiohttp_client(gateway(readiness))
    response = await client.get("/readyz")
    assert response.status == 503
    body = await response.json()
    assert body["checks"]["kafka"]["status"] == "down"
    assert body["checks"]["redis"]["status"] == "up"
    _assert_error(body, "not_ready", response.headers["X-Request-Id"])
    assert "kafka" in body["error"]["message"]
    assert "redis" not in body["error"]["message"]


async def test_metrics_count_requests_by_route_template(client):
    await client.get("/healthz")
    await client.get("/no/such/thing")
    text = await (await client.get("/metrics")).text()
    assert 'shop_http_requests_total{context="process",method="GET",route="/healthz",status="200"}' in text
    assert 'route="unmatched",status="404"' in text
    assert "/no/such/thing" not in text


async def test_openapi_documents_every_route_the_gateway_serves(client):
    from psycopg_pool import AsyncConnectionPool

    from shop.http.routes.journey import JourneyRoutes
    from shop.http.routes.orders import OrderRoutes
    from shop.http.routes.products import ProductRoutes

    response = await client.get("/api/v1/openapi.json")
    assert response.status == 200
    document = await response.json()
    assert document["openapi"].startswith("3.1")
    nowhere: AsyncConnectionPool = AsyncConnectionPool("postgresql://nowhere/none", open=False)
    served = {
        (r.method.lower(), r.resource.canonical)
        for r in gateway(
            Readiness({}, timeout=1),
            auth=_unconnected_auth_routes(),
            products=_unconnected_context_routes(ProductRoutes),
            orders=_unconnected_context_routes(OrderRoutes, stock_watch=None),
            admin=JourneyRoutes(nowhere, nowhere, nowhere, None),
        ).router.routes()
        if r.resource is not None and r.method != "HEAD"
    }
    documented = {(m, p) for p, ops in DOCUMENT["paths"].items() for m in ops if m != "parameters"}
    assert served == documented


def _unconnected_auth_routes(throttle=None):
    """Auth routes whose pools never connect: enough to list the routes (or to log in with a
    handler that never reaches a database)."""
    from concurrent.futures import ThreadPoolExecutor
    from datetime import timedelta

    from psycopg_pool import AsyncConnectionPool, ConnectionPool

    from shop.handlers.auth import AuthPolicy
    from shop.http.commands import CommandBus
    from shop.http.routes.auth import AuthRoutes

    return AuthRoutes(
        actors=None,  # type: ignore[arg-type]
        commands=CommandBus(ThreadPoolExecutor(1), timeout=1),
        primary=ConnectionPool("postgresql://nowhere/none", open=False),
        replica=AsyncConnectionPool("postgresql://nowhere/none", open=False),
        primary_async=AsyncConnectionPool("postgresql://nowhere/none", open=False),
        reads=None,  # type: ignore[arg-type]
        policy=AuthPolicy("pepper", timedelta(days=1)),
        clock=lambda: None,  # type: ignore[arg-type,return-value]
        issuer=None,  # type: ignore[arg-type]
        throttle=throttle,
    )


def _unconnected_context_routes(routes: Callable[..., Any], **more: Any) -> Any:
    """Product or order routes (`routes`, their class) whose pools never connect: enough to list the
    routes."""
    from psycopg_pool import AsyncConnectionPool

    return routes(
        actors=None,
        commands=None,
        replica=AsyncConnectionPool("postgresql://nowhere/none", open=False),
        primary=AsyncConnectionPool("postgresql://nowhere/none", open=False),
        **more,
    )
