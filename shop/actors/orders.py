"""Order actors. A broken rule (unknown product, reused key) is an answer, not a failure."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from shop import bootstrap
from shop.actors.commands import command_actor, refusal
from shop.db import orders as db
from shop.db.unit_of_work import UnitOfWork
from shop.domain.orders import OrderLine, OrderRuleError
from shop.domain.timers import TimerPolicy
from shop.handlers.orders import (
    CancelOrder,
    PayOrder,
    PlaceOrder,
    handle_cancel,
    handle_pay,
    handle_place_order,
)
from shop.schemas.views import order_view

QUEUE = "orders"


@command_actor(QUEUE)
def place_order(
    order_id: str,
    user_id: str,
    idempotency_key: str,
    request_hash: str,
    lines: list[dict[str, Any]],
    trace_headers: Any = None,  # ignored: from a gateway older than the tracing middleware
    customer_email: str | None = None,
) -> dict[str, Any]:
    pool = bootstrap.primary_pool("orders")
    command = PlaceOrder(
        UUID(order_id),
        UUID(user_id),
        idempotency_key,
        request_hash,
        [OrderLine(UUID(line["product_id"]), int(line["quantity"])) for line in lines],
        customer_email,
    )
    orders = bootstrap.process_settings().orders
    try:
        placed = handle_place_order(
            command,
            lambda: UnitOfWork(pool),
            bootstrap.utc_now,
            TimerPolicy.from_seconds(orders.reminders, orders.ttl),
        )
    except OrderRuleError as exc:
        return refusal(exc)
    with pool.connection() as conn:
        found = db.order(conn, placed.order_id)
        row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
    assert found is not None
    return {"order": order_view(*found), "created": placed.created, "commit_lsn": row[0] if row else None}


def _answer(pool: Any, order_id: UUID, work: Callable[[], None]) -> dict[str, Any]:
    try:
        work()
    except OrderRuleError as exc:
        return refusal(exc)
    with pool.connection() as conn:
        found = db.order(conn, order_id)
        row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
    assert found is not None
    return {"order": order_view(*found), "commit_lsn": row[0] if row else None}


@command_actor(QUEUE)
def pay_order(order_id: str, user_id: str, payment_reference: str) -> dict[str, Any]:
    pool = bootstrap.primary_pool("orders")
    command = PayOrder(UUID(order_id), UUID(user_id), payment_reference)
    return _answer(pool, command.order_id, lambda: handle_pay(command, UnitOfWork(pool), bootstrap.utc_now))


@command_actor(QUEUE)
def cancel_order(order_id: str, user_id: str) -> dict[str, Any]:
    pool = bootstrap.primary_pool("orders")
    command = CancelOrder(UUID(order_id), UUID(user_id))
    return _answer(
        pool, command.order_id, lambda: handle_cancel(command, UnitOfWork(pool), bootstrap.utc_now)
    )
