"""Placing an order: idempotent per (user, Idempotency-Key), priced from the order side's copy of
product prices, written with its `order.created` event in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import psycopg

from shop.db import orders as db
from shop.db.inbox import record_handled
from shop.db.unit_of_work import UnitOfWork
from shop.domain.ids import uuid7
from shop.domain.orders import (
    OrderLine,
    OrderNotFound,
    OrderRuleError,
    Status,
    StockNotReserved,
    check_transition,
    price_lines,
)
from shop.schemas.orders import (
    ORDER_CANCELLED,
    ORDER_CREATED,
    ORDER_PAID,
    STOCK_RESERVED,
    OrderNoticeV1,
    encode_order_created,
    encode_order_notice,
)

Clock = Callable[[], datetime]


class IdempotencyKeyReused(OrderRuleError):
    code = "idempotency_key_reused"


@dataclass(frozen=True)
class PlaceOrder:
    order_id: UUID  # chosen by the gateway, so it can point at the order before it exists
    user_id: UUID
    idempotency_key: str
    request_hash: str
    lines: list[OrderLine]
    trace_headers: dict[str, str]
    customer_email: str | None = None


@dataclass(frozen=True)
class Placed:
    order_id: UUID
    created: bool  # False: the same request again; the first one's order


def _replay(uow: UnitOfWork, cmd: PlaceOrder) -> Placed | None:
    record = db.idempotency_record(uow.conn, cmd.user_id, cmd.idempotency_key)
    if record is None:
        return None
    if record.request_hash != cmd.request_hash:
        raise IdempotencyKeyReused("this Idempotency-Key was used for a different request")
    return Placed(record.order_id, created=False)


def handle_place_order(
    cmd: PlaceOrder, uow_factory: Callable[[], UnitOfWork], clock: Clock, ttl: timedelta
) -> Placed:
    try:
        with uow_factory() as uow:
            replayed = _replay(uow, cmd)
            if replayed is not None:
                return replayed
            prices = db.prices_of(uow.conn, [line.product_id for line in cmd.lines])
            priced, total, currency = price_lines(cmd.lines, prices)
            now = clock()
            db.insert_order(
                uow.conn,
                cmd.order_id,
                cmd.user_id,
                priced,
                total,
                currency,
                now,
                now + ttl,
                cmd.customer_email,
            )
            # The primary key of this row is what stops a second order when Redis forgot the lock.
            db.insert_idempotency_record(
                uow.conn, cmd.user_id, cmd.idempotency_key, cmd.request_hash, cmd.order_id
            )
            event_id = uuid7()
            payload = encode_order_created(event_id, now, cmd.order_id, cmd.user_id, priced, total, currency)
            uow.publish_event(event_id, ORDER_CREATED, str(cmd.order_id), payload, cmd.trace_headers)
            return Placed(cmd.order_id, created=True)
    except psycopg.errors.UniqueViolation:
        # A concurrent twin committed first: answer with its order.
        with uow_factory() as uow:
            replayed = _replay(uow, cmd)
        if replayed is None:
            raise
        return replayed


STOCK_CONSUMER = "order-stock"


def handle_stock_outcome(event: OrderNoticeV1, uow: UnitOfWork, clock: Clock) -> bool:
    """The inventory's answer: stock `reserved`, or `rejected` and the order `CANCELLED` with
    `out_of_stock`. False when the event was handled before."""
    now = clock()
    with uow:
        if not record_handled(uow.conn, STOCK_CONSUMER, event.event_id):
            return False
        if event.schema == STOCK_RESERVED:
            uow.conn.execute(
                "UPDATE orders SET stock = 'reserved', updated_at = %s WHERE id = %s AND stock = 'reserving'",
                (now, event.order_id),
            )
        else:
            cancelled = uow.conn.execute(
                """
                UPDATE orders SET stock = 'rejected', status = 'CANCELLED', cancel_reason = 'out_of_stock',
                       updated_at = %s
                 WHERE id = %s AND status = 'PENDING' AND stock = 'reserving'
                RETURNING customer_email
                """,
                (now, event.order_id),
            ).fetchone()
            if cancelled is not None and cancelled[0]:
                _email_cancellation(uow, event.order_id, cancelled[0], "out_of_stock")
        return True


def _email_cancellation(uow: UnitOfWork, order_id: UUID, email: str, reason: str) -> None:
    """Through the outbox: the email goes out if and only if the cancellation commits."""
    uow.enqueue_actor(
        uuid7(),
        "mail",
        "send_email",
        {
            "template": "order_cancelled",
            "to": email,
            "context": {"order_id": str(order_id), "reason": reason},
            "dedupe_key": f"order-cancelled:{order_id}",
        },
    )


@dataclass(frozen=True)
class PayOrder:
    order_id: UUID
    user_id: UUID
    payment_reference: str


@dataclass(frozen=True)
class CancelOrder:
    order_id: UUID
    user_id: UUID


def _lock_own_order(uow: UnitOfWork, order_id: UUID, user_id: UUID) -> tuple[Status, str, str | None]:
    row = uow.conn.execute(
        "SELECT status, stock, payment_reference, user_id FROM orders WHERE id = %s FOR UPDATE", (order_id,)
    ).fetchone()
    if row is None or row[3] != user_id:
        raise OrderNotFound("no such order")
    return Status(row[0]), row[1], row[2]


def _notify(uow: UnitOfWork, schema: str, order_id: UUID, reason: str | None, now: datetime) -> None:
    event_id = uuid7()
    uow.publish_event(
        event_id, schema, str(order_id), encode_order_notice(schema, event_id, now, order_id, reason), {}
    )


def handle_pay(cmd: PayOrder, uow: UnitOfWork, clock: Clock) -> None:
    """PENDING with stock reserved → PAID. The same payment again is harmless."""
    now = clock()
    with uow:
        status, stock, reference = _lock_own_order(uow, cmd.order_id, cmd.user_id)
        if status is Status.PAID and reference == cmd.payment_reference:
            return
        check_transition(status, Status.PAID)
        if stock != "reserved":
            raise StockNotReserved("the order's stock is not reserved yet; try again shortly")
        uow.conn.execute(
            """
            UPDATE orders SET status = 'PAID', paid_at = %s, payment_reference = %s, updated_at = %s
             WHERE id = %s
            """,
            (now, cmd.payment_reference, now, cmd.order_id),
        )
        _notify(uow, ORDER_PAID, cmd.order_id, None, now)


def handle_cancel(cmd: CancelOrder, uow: UnitOfWork, clock: Clock) -> None:
    """PENDING → CANCELLED (customer_request); the inventory releases the stock on order.cancelled."""
    now = clock()
    with uow:
        status, _stock, _reference = _lock_own_order(uow, cmd.order_id, cmd.user_id)
        check_transition(status, Status.CANCELLED)
        uow.conn.execute(
            """
            UPDATE orders SET status = 'CANCELLED', cancel_reason = 'customer_request', updated_at = %s
             WHERE id = %s
            """,
            (now, cmd.order_id),
        )
        _notify(uow, ORDER_CANCELLED, cmd.order_id, "customer_request", now)
