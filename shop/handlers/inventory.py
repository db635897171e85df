"""The inventory side of the order saga, on the `catalog` database.

`order.created` reserves every line at once or none: the products are locked in id order (so two
orders never deadlock), each line is checked against what is available, and only if all fit are
the `StockReserved` events appended. Stock changes are product events like any other, so a
product's history shows each reservation. The answer (`stock.reserved` / `stock.rejected`) goes
out through the catalog's outbox in the same transaction. The inbox and the reservations' primary
key make a redelivered `order.created` a no-op.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from shop.db import products as db
from shop.db.inbox import record_handled
from shop.db.unit_of_work import UnitOfWork
from shop.domain.clock import Clock
from shop.domain.ids import uuid7
from shop.domain.orders import EventForUnknownOrder
from shop.domain.products import InsufficientStock, release, reserve, sell
from shop.handlers.products import record_event
from shop.schemas.orders import (
    STOCK_REJECTED,
    STOCK_RESERVED,
    OrderCreatedV1,
    OrderNoticeV1,
    encode_order_notice,
)

CONSUMER = "inventory"


def handle_order_created(event: OrderCreatedV1, uow: UnitOfWork, clock: Clock) -> str:
    """ "reserved", "rejected", "cancelled" (the order's cancellation came first: nothing held, the
    order side told `stock.rejected`), or "duplicate" (already handled: nothing done)."""
    now = clock()
    with uow:
        # Before anything is read: a cancellation of this order handled meanwhile must either be
        # seen here, or see the reservation this makes (it waits on the same lock).
        db.lock_order(uow.conn, event.order_id)
        if not record_handled(uow.conn, CONSUMER, event.event_id):
            return "duplicate"
        reserved_before, cancelled = _reserved_or_cancelled(uow, event.order_id)
        if reserved_before:
            return "duplicate"
        if cancelled:
            # The cancellation overtook the order: nothing to hold. The order side still hears an
            # outcome, or the order's stock would stay `reserving` for good.
            _answer(
                uow,
                STOCK_REJECTED,
                event.order_id,
                "the order was cancelled before its stock was reserved",
                now,
            )
            return "cancelled"
        quantities = dict(event.lines)
        products = [db.product_for_update(uow.conn, pid) for pid in sorted(quantities)]
        reason: str | None = None
        planned = []
        for product_id, product in zip(sorted(quantities), products, strict=True):
            if product is None:
                reason = f"unknown product {product_id}"
                break
            try:
                planned.append((product, reserve(product, event.order_id, quantities[product_id])))
            except InsufficientStock as exc:
                reason = f"out of stock: {exc}"
                break
        if reason is None:
            for product, stock_event in planned:
                record_event(uow, product, stock_event, product.id, now)
                uow.conn.execute(
                    "INSERT INTO stock_reservations (order_id, product_id, quantity) VALUES (%s, %s, %s)",
                    (event.order_id, product.id, stock_event.data["quantity"]),
                )
        _answer(uow, STOCK_RESERVED if reason is None else STOCK_REJECTED, event.order_id, reason, now)
        return "reserved" if reason is None else "rejected"


def _answer(uow: UnitOfWork, outcome: str, order_id: UUID, reason: str | None, now: datetime) -> None:
    """`stock.reserved` or `stock.rejected` to the order side, through the outbox."""
    answer_id = uuid7()
    payload: dict[str, Any] = encode_order_notice(outcome, answer_id, now, order_id, reason)
    uow.publish_event(answer_id, outcome, str(order_id), payload)


def _reserved_or_cancelled(uow: UnitOfWork, order_id: UUID) -> tuple[bool, bool]:
    """Whether the order holds reservations already, and whether its cancellation came first
    (one round trip for both)."""
    row = uow.conn.execute(
        "SELECT EXISTS (SELECT 1 FROM stock_reservations WHERE order_id = %s),"
        " EXISTS (SELECT 1 FROM cancelled_orders WHERE order_id = %s)",
        (order_id, order_id),
    ).fetchone()
    assert row is not None
    return bool(row[0]), bool(row[1])


def _settle(uow: UnitOfWork, notice: OrderNoticeV1, new_state: str, now: datetime) -> int:
    """Moves the order's held units out of `reserved` (released back, or sold); returns how many lines."""
    rows = uow.conn.execute(
        """
        SELECT product_id, quantity FROM stock_reservations
         WHERE order_id = %s AND state = 'reserved' ORDER BY product_id FOR UPDATE
        """,
        (notice.order_id,),
    ).fetchall()
    for product_id, quantity in rows:
        product = db.product_for_update(uow.conn, product_id)
        assert product is not None  # reservations reference products
        change = release if new_state == "released" else sell
        record_event(uow, product, change(notice.order_id, quantity), product_id, now)
        uow.conn.execute(
            "UPDATE stock_reservations SET state = %s, updated_at = %s"
            " WHERE order_id = %s AND product_id = %s",
            (new_state, now, notice.order_id, product_id),
        )
    return len(rows)


def handle_order_cancelled(notice: OrderNoticeV1, uow: UnitOfWork, clock: Clock) -> None:
    """Gives the order's reserved units back; remembers the cancellation if nothing is held yet."""
    now = clock()
    with uow:
        db.lock_order(uow.conn, notice.order_id)  # see handle_order_created
        if not record_handled(uow.conn, CONSUMER, notice.event_id):
            return
        uow.conn.execute(
            "INSERT INTO cancelled_orders (order_id) VALUES (%s) ON CONFLICT DO NOTHING", (notice.order_id,)
        )
        _settle(uow, notice, "released", now)


def handle_order_paid(notice: OrderNoticeV1, uow: UnitOfWork, clock: Clock) -> None:
    """A paid order's reservation becomes a sale: the units leave the stock for good. A paid order
    that never held stock here cannot be: `EventForUnknownOrder`, nothing recorded."""
    now = clock()
    with uow:
        db.lock_order(uow.conn, notice.order_id)  # see handle_order_created
        if not record_handled(uow.conn, CONSUMER, notice.event_id):
            return
        if not _settle(uow, notice, "sold", now) and not _has_reservations(uow, notice.order_id):
            raise EventForUnknownOrder(
                f"order.paid for order {notice.order_id}, which holds no reservation here"
            )


def _has_reservations(uow: UnitOfWork, order_id: UUID) -> bool:
    """Whether the order holds or held stock here, in whatever state."""
    row = uow.conn.execute("SELECT 1 FROM stock_reservations WHERE order_id = %s LIMIT 1", (order_id,))
    return row.fetchone() is not None
