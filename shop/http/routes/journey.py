"""An order's journey, for an admin: the order's trace as the trace store holds it (every hop from the
gateway through the actors, the relay, Kafka and the agents to the mail), next to the events the order
caused in the orders' and the catalog's outboxes. The trace is found by the id the placement recorded
with the order (shop/db/orders.py `insert_order`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from aiohttp import web
from psycopg_pool import AsyncConnectionPool

from shop.db import orders as db
from shop.http.auth import require_admin
from shop.http.errors import ApiError
from shop.http.validation import params
from shop.observability.trace_store import TraceStore, read_trace


@dataclass
class JourneyRoutes:
    orders_replica: AsyncConnectionPool
    orders_primary: AsyncConnectionPool
    catalog_replica: AsyncConnectionPool
    trace_store: TraceStore | None  # None: SHOP_TRACE_QUERY_URL is not set

    async def order_journey(self, request: web.Request) -> web.Response:
        require_admin(request)
        if self.trace_store is None:
            raise ApiError(
                503, "tracing_not_configured", "no trace store is configured (SHOP_TRACE_QUERY_URL)"
            )
        order_id = UUID(params(request)["order_id"])  # checked: a malformed id is a 404
        async with self.orders_replica.connection() as conn:
            order = await db.order_trace(conn, order_id)
            placed_events = await db.order_events(conn, order_id)
        if order is None:  # or the replica has not replayed a placement of a moment ago
            async with self.orders_primary.connection() as conn:
                order = await db.order_trace(conn, order_id)
                placed_events = await db.order_events(conn, order_id)
        if order is None:
            raise ApiError(404, "not_found", "no such order")
        async with self.catalog_replica.connection() as conn:
            stock_events = await db.order_events(conn, order_id)
        reading = await read_trace(self.trace_store, order.trace_id)
        events = [("orders", e) for e in placed_events] + [("catalog", e) for e in stock_events]
        events.sort(key=lambda found: found[1].created_at)
        return web.json_response(
            {
                "order_id": str(order.order_id),
                "placed_at": order.created_at.isoformat(),
                "trace_id": order.trace_id,
                "trace": reading.state,
                "reason": reading.reason,
                "spans": [span.view() for span in reading.spans],
                "events": [_event_view(database, event) for database, event in events],
            }
        )


def _event_view(database: str, event: db.OutboxEvent) -> dict[str, Any]:
    return {
        "database": database,
        "topic": event.topic,
        "created_at": event.created_at.isoformat(),
        "published_at": event.published_at.isoformat() if event.published_at else None,
    }
