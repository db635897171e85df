"""The inventory side of the order saga, on the `catalog` database.

`order.created` reserves every line at once or none: the products are locked in id order (so two
orders never deadlock), each line is checked against what is available (shop.domain.inventory
decides), and only if all fit are the `StockReserved` events appended. Stock changes are product
events like any other, so a product's history shows each reservation. The answer (`stock.reserved`
/ `stock.rejected`) goes out through the catalog's outbox in the same transaction. The inbox and the
reservations' primary key make a redelivered `order.created` a no-op.
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
from shop.domain.inventory import (
    CANCELLED_FIRST,
    Answer,
    Held,
    before_reserving,
    reserve_lines,
    settle,
)
from shop.domain.orders import EventForUnknownOrder
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
            return Answer.DUPLICATE
        answer = before_reserving(*db.reserved_or_cancelled(uow.conn, event.order_id))
        if answer is Answer.CANCELLED:
            # The cancellation overtook the order: nothing to hold. The order side still hears an
            # outcome, or the order's stock would stay `reserving` for good.
            _answer(uow, STOCK_REJECTED, event.order_id, CANCELLED_FIRST, now)
        if answer is not None:
            return answer
        quantities = dict(event.lines)
        products = [db.product_for_update(uow.conn, pid) for pid in sorted(quantities)]
        reservation = reserve_lines(event.order_id, quantities, products)
        for product, stock_event in reservation.events:
            record_event(uow, product, stock_event, product.id, now)
            db.insert_reservation(uow.conn, event.order_id, product.id, stock_event.data["quantity"])
        if reservation.rejected is not None:
            _answer(uow, STOCK_REJECTED, event.order_id, reservation.rejected, now)
            return Answer.REJECTED
        _answer(uow, STOCK_RESERVED, event.order_id, None, now)
        return Answer.RESERVED


def _answer(uow: UnitOfWork, outcome: str, order_id: UUID, reason: str | None, now: datetime) -> None:
    """`stock.reserved` or `stock.rejected` to the order side, through the outbox."""
    answer_id = uuid7()
    payload: dict[str, Any] = encode_order_notice(outcome, answer_id, now, order_id, reason)
    uow.publish_event(answer_id, outcome, str(order_id), payload)


def _settle(uow: UnitOfWork, notice: OrderNoticeV1, to: Held, now: datetime) -> int:
    """Moves the order's held units out of `reserved` (released back, or sold); returns how many lines."""
    held = db.held_reservations(uow.conn, notice.order_id)
    for product_id, quantity in held:
        product = db.product_for_update(uow.conn, product_id)
        assert product is not None  # reservations reference products
        record_event(uow, product, settle(notice.order_id, quantity, to), product_id, now)
        db.set_reservation_state(uow.conn, notice.order_id, product_id, to, now)
    return len(held)


def handle_order_cancelled(notice: OrderNoticeV1, uow: UnitOfWork, clock: Clock) -> None:
    """Gives the order's reserved units back; remembers the cancellation if nothing is held yet."""
    now = clock()
    with uow:
        db.lock_order(uow.conn, notice.order_id)  # see handle_order_created
        if not record_handled(uow.conn, CONSUMER, notice.event_id):
            return
        db.remember_cancelled(uow.conn, notice.order_id)
        _settle(uow, notice, Held.RELEASED, now)


def handle_order_paid(notice: OrderNoticeV1, uow: UnitOfWork, clock: Clock) -> None:
    """A paid order's reservation becomes a sale: the units leave the stock for good. A paid order
    that never held stock here cannot be: `EventForUnknownOrder`, nothing recorded."""
    now = clock()
    with uow:
        db.lock_order(uow.conn, notice.order_id)  # see handle_order_created
        if not record_handled(uow.conn, CONSUMER, notice.event_id):
            return
        if not _settle(uow, notice, Held.SOLD, now) and not db.ever_held(uow.conn, notice.order_id):
            raise EventForUnknownOrder(
                f"order.paid for order {notice.order_id}, which holds no reservation here"
            )
