"""Placing an order: idempotent per (user, Idempotency-Key), priced from the order side's copy of
product prices, written with its `order.created` event and its timers in one transaction. Paying
and cancelling it; the inventory's answer to it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg

from shop.db import orders as db
from shop.db import timers as timers_db
from shop.db.inbox import record_handled
from shop.db.unit_of_work import UnitOfWork
from shop.domain.clock import Clock
from shop.domain.idempotency import IdempotencyKeyReused
from shop.domain.ids import uuid7
from shop.domain.orders import (
    EventForUnknownOrder,
    InvalidTransition,
    OrderLine,
    OrderNotFound,
    OrderRuleError,
    PricedLine,
    Status,
    Stock,
    StockNotReserved,
    UnpaidLimits,
    check_transition,
    check_unpaid,
    price_lines,
)
from shop.domain.timers import EXPIRY, TimerPolicy, schedule
from shop.names import EXPIRY_ACTOR, MAIL_QUEUE, REMINDER_ACTOR, SEND_EMAIL, TIMER_QUEUE
from shop.schemas.orders import (
    ORDER_CANCELLED,
    ORDER_CREATED,
    ORDER_PAID,
    STOCK_RESERVED,
    OrderNoticeV1,
    encode_order_created,
    encode_order_notice,
)


@dataclass(frozen=True)
class PlaceOrder:
    order_id: UUID  # chosen by the gateway, so it can point at the order before it exists
    user_id: UUID
    idempotency_key: str
    request_hash: str
    lines: list[OrderLine]
    customer_email: str | None = None
    # Where the gateway points a client it answered 202 (derived from user and key): the order, or
    # the refusal, is recorded under it.
    placement_id: UUID | None = None


@dataclass(frozen=True)
class Placed:
    order_id: UUID
    created: bool  # False: the same request again; the first one's order
    # The order as this placement wrote it (None for a replay): its answer, without reading it back.
    order: tuple[db.OrderRow, list[db.LineRow]] | None = None
    # The primary's WAL position after the commit, when the unit of work tracked it.
    commit_lsn: str | None = None


def _replay(uow: UnitOfWork, cmd: PlaceOrder) -> Placed | None:
    record = db.idempotency_record(uow.conn, cmd.user_id, cmd.idempotency_key)
    if record is None:
        return None
    if record.request_hash != cmd.request_hash:
        raise IdempotencyKeyReused("this Idempotency-Key was used for a different request")
    return Placed(record.order_id, created=False)


# The timer actors (shop.actors.timers), named here so that placing an order needs no actor import.


def schedule_timers(uow: UnitOfWork, order_id: UUID, placed_at: datetime, policy: TimerPolicy) -> None:
    """Records the order's timers and sends the triggers of its expiry and of its first reminder
    through the outbox: the relay puts each in the RabbitMQ queue of its delay, which hands it to
    the timer queue when the delay is over. Each reminder, when it fires, sends the next reminder's
    trigger (shop.handlers.timers): two trigger messages wait per order instead of one per timer,
    and the expiry, the timer that matters most, waits on its own, whatever became of the reminders."""
    timers = schedule(placed_at, policy)
    timers_db.insert_timers(uow.conn, order_id, timers)
    first, expiry = timers[0], timers[-1]
    send_trigger(uow, order_id, first.kind, first.delay)
    if expiry is not first:
        send_trigger(uow, order_id, expiry.kind, expiry.delay)


def send_trigger(uow: UnitOfWork, order_id: UUID, kind: str, delay: timedelta) -> None:
    """The trigger message of timer `kind`, through the outbox, into the delay queue of `delay`."""
    actor = EXPIRY_ACTOR if kind == EXPIRY else REMINDER_ACTOR
    uow.enqueue_actor(uuid7(), TIMER_QUEUE, actor, {"order_id": str(order_id), "kind": kind}, delay=delay)


def handle_place_order(
    cmd: PlaceOrder,
    uow_factory: Callable[[], UnitOfWork],
    clock: Clock,
    policy: TimerPolicy,
    limits: UnpaidLimits | None = None,
) -> Placed:
    """The order, placed or (same key, same request) placed before. A broken rule (an unknown
    product, too much unpaid) raises its `OrderRuleError`, after recording it as the placement's
    latest refusal; `limits` None: no limit on what a customer holds unpaid."""
    try:
        uow = uow_factory()
        refused: OrderRuleError | None = None
        with uow:
            placed = _replay(uow, cmd)
            if placed is None:
                now = clock()
                try:
                    priced, total, currency = _decide(uow, cmd, limits)
                except OrderRuleError as exc:
                    refused = exc
                    if cmd.placement_id is not None:
                        db.record_refusal(uow.conn, cmd.placement_id, cmd.user_id, exc.code, str(exc), now)
                else:
                    placed = _place(uow, cmd, priced, total, currency, now, policy)
        if refused is not None:
            raise refused
        assert placed is not None
        return replace(placed, commit_lsn=uow.commit_lsn)
    except psycopg.errors.UniqueViolation:
        # A concurrent twin committed first: answer with its order.
        with uow_factory() as uow:
            replayed = _replay(uow, cmd)
        if replayed is None:
            raise
        return replayed


def _decide(
    uow: UnitOfWork, cmd: PlaceOrder, limits: UnpaidLimits | None
) -> tuple[list[PricedLine], int, str]:
    """The priced lines, total and currency, if the order may be placed."""
    prices = db.prices_of(uow.conn, [line.product_id for line in cmd.lines])
    priced, total, currency = price_lines(cmd.lines, prices)
    if limits is not None:
        db.lock_customer(uow.conn, cmd.user_id)
        held_orders, held_units = db.unpaid_of(uow.conn, cmd.user_id)
        check_unpaid(held_orders, held_units, sum(line.quantity for line in priced), limits)
    return priced, total, currency


def _place(
    uow: UnitOfWork,
    cmd: PlaceOrder,
    priced: list[PricedLine],
    total: int,
    currency: str,
    now: datetime,
    policy: TimerPolicy,
) -> Placed:
    expires_at = now + policy.ttl
    db.insert_order(
        uow.conn, cmd.order_id, cmd.user_id, priced, total, currency, now, expires_at, cmd.customer_email
    )
    schedule_timers(uow, cmd.order_id, now, policy)
    # The primary key of this row is what stops a second order when Redis forgot the lock.
    db.insert_idempotency_record(
        uow.conn, cmd.user_id, cmd.idempotency_key, cmd.request_hash, cmd.order_id, cmd.placement_id
    )
    event_id = uuid7()
    payload = encode_order_created(event_id, now, cmd.order_id, cmd.user_id, priced, total, currency)
    uow.publish_event(event_id, ORDER_CREATED, str(cmd.order_id), payload)
    written = db.OrderRow(
        cmd.order_id,
        cmd.user_id,
        Status.PENDING,
        Stock.RESERVING,
        None,
        total,
        currency,
        now,
        now,
        None,
        expires_at,
    )
    lines = [
        db.LineRow(cmd.order_id, line.product_id, line.quantity, line.unit_price_cents)
        for line in sorted(priced, key=lambda line: line.product_id)
    ]
    return Placed(cmd.order_id, created=True, order=(written, lines))


STOCK_CONSUMER = "order-stock"


def handle_stock_outcome(event: OrderNoticeV1, uow: UnitOfWork, clock: Clock) -> bool:
    """The inventory's answer: stock `reserved`, or `rejected` and the order `CANCELLED` with
    `out_of_stock`. False when the event was handled before; `EventForUnknownOrder` (nothing
    recorded) when the order does not exist."""
    now = clock()
    with uow:
        if not record_handled(uow.conn, STOCK_CONSUMER, event.event_id):
            return False
        if event.schema == STOCK_RESERVED:
            settled = db.record_stock_outcome(uow.conn, event.order_id, Stock.RESERVED, now)
        else:
            cancelled = db.cancel_for_stock_rejected(uow.conn, event.order_id, now)
            if cancelled is not None:
                settled = True
                if cancelled.customer_email:
                    email_cancellation(uow, event.order_id, cancelled.customer_email, "out_of_stock")
            else:
                # The order ended first (the customer cancelled it, or it expired): keep its status,
                # record the outcome, so that no order is left `reserving`.
                settled = db.record_stock_outcome(uow.conn, event.order_id, Stock.REJECTED, now)
        # Nothing changed: a late outcome of an order settled already, or of no order at all.
        if not settled and not db.order_exists(uow.conn, event.order_id):
            raise EventForUnknownOrder(f"{event.schema} for order {event.order_id}, which does not exist")
        uow.notify_after_commit(db.STOCK_SETTLED_CHANNEL, str(event.order_id))
        return True


def email_customer(uow: UnitOfWork, template: str, to: str, context: dict[str, Any], dedupe_key: str) -> None:
    """Through the outbox: the email goes out if and only if the change that caused it commits.
    `dedupe_key` names that change, so a redelivered message never sends it twice."""
    uow.enqueue_actor(
        uuid7(),
        MAIL_QUEUE,
        SEND_EMAIL,
        {"template": template, "to": to, "context": context, "dedupe_key": dedupe_key},
    )


def email_cancellation(uow: UnitOfWork, order_id: UUID, email: str, reason: str) -> None:
    email_customer(
        uow,
        "order_cancelled",
        email,
        {"order_id": str(order_id), "reason": reason},
        f"order-cancelled:{order_id}",
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


@dataclass(frozen=True)
class LockedOrder:
    status: Status
    stock: str
    payment_reference: str | None
    expires_at: datetime


def _lock_own_order(uow: UnitOfWork, order_id: UUID, user_id: UUID) -> LockedOrder:
    row = uow.conn.execute(
        "SELECT status, stock, payment_reference, expires_at, user_id FROM orders WHERE id = %s FOR UPDATE",
        (order_id,),
    ).fetchone()
    if row is None or row[4] != user_id:
        raise OrderNotFound("no such order")
    return LockedOrder(Status(row[0]), row[1], row[2], row[3])


def notify(uow: UnitOfWork, schema: str, order_id: UUID, reason: str | None, now: datetime) -> None:
    """An order notice (order.paid, order.cancelled, order.completed) on Kafka, through the outbox."""
    event_id = uuid7()
    uow.publish_event(
        event_id, schema, str(order_id), encode_order_notice(schema, event_id, now, order_id, reason), {}
    )


def handle_pay(cmd: PayOrder, uow: UnitOfWork, clock: Clock) -> None:
    """PENDING with stock reserved → PAID. The same payment again is harmless."""
    now = clock()
    with uow:
        order = _lock_own_order(uow, cmd.order_id, cmd.user_id)
        if order.status is Status.PAID and order.payment_reference == cmd.payment_reference:
            return
        check_transition(order.status, Status.PAID)
        if now >= order.expires_at:
            # Its expiry timer is about to cancel it; a payment now would race that and lose.
            raise InvalidTransition(f"the order expired at {order.expires_at.isoformat()}; it cannot be paid")
        if order.stock != Stock.RESERVED:
            raise StockNotReserved("the order's stock is not reserved yet; try again shortly")
        uow.conn.execute(
            """
            UPDATE orders SET status = 'PAID', paid_at = %s, payment_reference = %s, updated_at = %s
             WHERE id = %s
            """,
            (now, cmd.payment_reference, now, cmd.order_id),
        )
        notify(uow, ORDER_PAID, cmd.order_id, None, now)


def cancel_locked(uow: UnitOfWork, order_id: UUID, reason: str, now: datetime) -> None:
    """PENDING → CANCELLED on an order the caller has locked; order.cancelled makes the inventory
    release its stock."""
    uow.conn.execute(
        "UPDATE orders SET status = 'CANCELLED', cancel_reason = %s, updated_at = %s WHERE id = %s",
        (reason, now, order_id),
    )
    notify(uow, ORDER_CANCELLED, order_id, reason, now)


def handle_cancel(cmd: CancelOrder, uow: UnitOfWork, clock: Clock) -> None:
    """PENDING → CANCELLED (customer_request)."""
    now = clock()
    with uow:
        order = _lock_own_order(uow, cmd.order_id, cmd.user_id)
        check_transition(order.status, Status.CANCELLED)
        cancel_locked(uow, cmd.order_id, "customer_request", now)
