"""GET /api/v1/admin/orders/{order_id}/journey through the real gateway's middlewares, with stand-in
pools (the db functions read what a test put in them) and a fake trace store handed in."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shop.db import orders as db
from shop.http.app import create_gateway_app
from shop.http.routes.journey import JourneyRoutes
from shop.http.schemas import ORDER_JOURNEY
from shop.observability.readiness import Readiness
from shop.security.tokens import TokenIssuer
from tests.unit.http.test_gateway_app import KEYRING, VERIFIER, _up
from tests.unit.observability.test_trace_store import DOCUMENT, TRACE_ID, FakeStore

ORDER = uuid.uuid4()
PLACED = datetime(2026, 12, 8, 10, 0, tzinfo=UTC)
ISSUER = TokenIssuer(KEYRING, "shop", "shop-api", 900)


class StandInPool:
    """A pool whose one connection holds an order table and an outbox of (key, event)."""

    def __init__(self, orders: dict[uuid.UUID, db.OrderTrace] | None = None, events=()) -> None:
        self.orders = orders or {}
        self.events = list(events)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[StandInPool]:
        yield self


@pytest.fixture(autouse=True)
def stand_in_sql(monkeypatch):
    async def order_trace(conn: StandInPool, order_id: uuid.UUID) -> db.OrderTrace | None:
        return conn.orders.get(order_id)

    async def order_events(conn: StandInPool, order_id: uuid.UUID) -> list[db.OutboxEvent]:
        return [event for key, event in conn.events if key == order_id]

    monkeypatch.setattr(db, "order_trace", order_trace)
    monkeypatch.setattr(db, "order_events", order_events)


def event(topic: str, seconds: float, sent: bool = True) -> tuple[uuid.UUID, db.OutboxEvent]:
    at = PLACED + timedelta(seconds=seconds)
    return ORDER, db.OutboxEvent(topic, at, at + timedelta(milliseconds=5) if sent else None)


def routes(store: Any = None, replica=None, primary=None, catalog=None) -> JourneyRoutes:
    placed = {ORDER: db.OrderTrace(ORDER, PLACED, TRACE_ID)}
    pools: Any = JourneyRoutes  # stand-in pools where the routes take psycopg's
    return pools(
        replica if replica is not None else StandInPool(placed, [event("order.created", 0.01)]),
        primary if primary is not None else StandInPool(),
        catalog
        if catalog is not None
        else StandInPool(events=[event("stock.reserved", 0.02), (uuid.uuid4(), event("x", 0)[1])]),
        store if store is not None else FakeStore(DOCUMENT),
    )


async def ask(aiohttp_client, journey: JourneyRoutes, roles=("admin",), order=ORDER):
    readiness = Readiness({"redis": _up}, timeout=1, cache_seconds=0)
    app = create_gateway_app(readiness, 1 << 20, KEYRING, VERIFIER, None, admin=journey)
    client = await aiohttp_client(app)
    headers = {"Authorization": f"Bearer {ISSUER.issue(uuid.uuid4(), list(roles))[0]}"} if roles else {}
    return await client.get(f"/api/v1/admin/orders/{order}/journey", headers=headers)


async def test_an_admin_sees_the_orders_spans_and_its_events_from_both_databases(aiohttp_client):
    store = FakeStore(DOCUMENT)
    answer = await ask(aiohttp_client, routes(store))
    assert answer.status == 200
    body = await answer.json()
    assert set(body) == set(ORDER_JOURNEY["required"])
    assert (body["order_id"], body["trace_id"], body["trace"], body["reason"]) == (
        str(ORDER),
        TRACE_ID,
        "recorded",
        None,
    )
    assert store.asked == [TRACE_ID]
    assert [(s["service"], s["name"], s["depth"]) for s in body["spans"][:3]] == [
        ("shop-gateway", "POST /api/v1/orders", 0),
        ("shop-gateway", "orders publish", 1),
        ("shop-workers", "place_order process", 2),
    ]
    span_fields = set(ORDER_JOURNEY["properties"]["spans"]["items"]["required"])
    assert all(set(s) == span_fields for s in body["spans"])
    assert [(e["database"], e["topic"]) for e in body["events"]] == [
        ("orders", "order.created"),
        ("catalog", "stock.reserved"),
    ]
    assert body["events"][0]["published_at"] == "2026-12-08T10:00:00.015000+00:00"


async def test_a_trace_the_store_does_not_hold_is_no_spans_and_the_reason(aiohttp_client):
    answer = await ask(aiohttp_client, routes(FakeStore(None)))
    assert answer.status == 200
    body = await answer.json()
    assert (body["trace"], body["spans"]) == ("not_recorded", [])
    assert "not sampled" in body["reason"]
    assert len(body["events"]) == 2  # the events are there all the same


async def test_an_order_the_replica_has_not_replayed_yet_is_read_from_the_primary(aiohttp_client):
    primary = StandInPool({ORDER: db.OrderTrace(ORDER, PLACED, None)})
    answer = await ask(aiohttp_client, routes(replica=StandInPool(), primary=primary))
    assert answer.status == 200
    assert (await answer.json())["trace"] == "not_traced"


async def test_an_unknown_order_is_a_404(aiohttp_client):
    answer = await ask(aiohttp_client, routes(), order=uuid.uuid4())
    assert answer.status == 404
    assert (await answer.json())["error"]["code"] == "not_found"


async def test_without_a_trace_store_the_answer_is_503_tracing_not_configured(aiohttp_client):
    journey = routes()
    journey.trace_store = None
    answer = await ask(aiohttp_client, journey)
    assert answer.status == 503
    assert (await answer.json())["error"]["code"] == "tracing_not_configured"


@pytest.mark.parametrize(("roles", "status"), [(("customer",), 403), ((), 401)])
async def test_only_an_admin_may_ask(aiohttp_client, roles, status):
    store = FakeStore(DOCUMENT)
    answer = await ask(aiohttp_client, routes(store), roles=roles)
    assert answer.status == status
    assert store.asked == []
