"""What an admin's view of an order's journey reads from the orders database: the trace the
placement ran in, recorded with the order, and the order's events in the outbox."""

from __future__ import annotations

import uuid

import psycopg
from opentelemetry import context, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from shop.db import orders as db
from shop.domain.orders import OrderLine
from tests.integration.db_helpers import priced_product
from tests.integration.test_orders import place

DATABASE = "orders"


def placed_in_trace(pool, product: uuid.UUID, trace_id: int | None) -> uuid.UUID:
    """An order placed by the handler, inside a span of `trace_id` (as the place-order actor's)."""
    if trace_id is None:
        return place(pool, uuid.uuid4(), "journey", [OrderLine(product, 1)]).order_id
    span = NonRecordingSpan(SpanContext(trace_id, 0x1234, is_remote=True, trace_flags=TraceFlags(1)))
    token = context.attach(trace.set_span_in_context(span))
    try:
        return place(pool, uuid.uuid4(), "journey", [OrderLine(product, 1)]).order_id
    finally:
        context.detach(token)


async def test_the_placement_records_its_trace_and_the_order_reads_back_with_its_events(pool, settings):
    product = priced_product(pool, "Journey mug", "JR")
    traced = placed_in_trace(pool, product, 0x0AF7651916CD43DD8448EB211C80319C)
    untraced = placed_in_trace(pool, product, None)
    url = settings.databases[DATABASE].primary_url
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        found = await db.order_trace(conn, traced)
        assert found is not None
        assert (found.order_id, found.trace_id) == (traced, "0af7651916cd43dd8448eb211c80319c")
        without = await db.order_trace(conn, untraced)
        assert without is not None
        assert without.trace_id is None
        assert await db.order_trace(conn, uuid.uuid4()) is None

        events = await db.order_events(conn, traced)
        # The order's Kafka event only: its timers and mail (RabbitMQ rows) are not events.
        assert [e.topic for e in events] == ["order.created"]
        assert await db.order_events(conn, uuid.uuid4()) == []
