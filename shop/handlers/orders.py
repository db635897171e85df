"""Placing an order: idempotent per (user, Idempotency-Key), priced from the order side's copy of
product prices, written with its `order.created` event and its timers in one transaction. Paying
and cancelling it; the inventory's answer to it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
    CancelReason,
    EventForUnknownOrder,
    Order,
    OrderCancelled,
    OrderEvent,
    OrderLine,
    OrderNotFound,
    OrderRuleError,
    PricedLine,
    Status,
    Stock,
    UnpaidLimits,
    apply,
    cancel,
    check_unpaid,
    pay,
    price_lines,
    settle_stock,
)
from shop.domain.timers import EXPIRY, TimerPolicy, schedule
from shop.names import EXPIRY_ACTOR, REMINDER_ACTOR, TIMER_QUEUE
from shop.schemas.mail import encode_send_email
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
    `out_of_stock` (shop.domain.orders.settle_stock). False when the event was handled before;
    `EventForUnknownOrder` (nothing recorded) when the order does not exist."""
    now = clock()
    with uow:
        if not record_handled(uow.conn, STOCK_CONSUMER, event.event_id):
            return False
        locked = db.lock_order(uow.conn, event.order_id)
        if locked is None:
            raise EventForUnknownOrder(f"{event.schema} for order {event.order_id}, which does not exist")
        outcome = Stock.RESERVED if event.schema == STOCK_RESERVED else Stock.REJECTED
        changes = settle_stock(locked.state, outcome)
        change(uow, locked.state, changes, now)
        # No order.cancelled for an order out of stock: the inventory holds nothing of it to release.
        if any(isinstance(c, OrderCancelled) for c in changes) and locked.customer_email:
            email_cancellation(uow, event.order_id, locked.customer_email, CancelReason.OUT_OF_STOCK)
        uow.notify_after_commit(db.STOCK_SETTLED_CHANNEL, str(event.order_id))
        return True


def change(uow: UnitOfWork, order: Order, events: Sequence[OrderEvent], now: datetime) -> Order:
    """Folds `events` into `order` (locked by the caller) and writes the result; nothing when there
    are none."""
    after = order
    for event in events:
        after = apply(after, event, now)
    if events:
        db.update_order(uow.conn, after, now)
    return after


def email_customer(uow: UnitOfWork, template: str, to: str, context: dict[str, Any], dedupe_key: str) -> None:
    """Through the outbox: the email goes out if and only if the change that caused it commits.
    `dedupe_key` names that change, so a redelivered message never sends it twice."""
    mail = encode_send_email(template, to, context, dedupe_key)
    uow.enqueue_actor(uuid7(), mail.queue, mail.actor_name, mail.kwargs)


def email_cancellation(uow: UnitOfWork, order_id: UUID, email: str, reason: CancelReason) -> None:
    email_customer(
        uow,
        "order_cancelled",
        email,
        {"order_id": str(order_id), "reason": reason.value},
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


def _lock_own_order(uow: UnitOfWork, order_id: UUID, user_id: UUID) -> Order:
    locked = db.lock_order(uow.conn, order_id)
    if locked is None or locked.state.user_id != user_id:
        raise OrderNotFound("no such order")
    return locked.state


def notify(uow: UnitOfWork, schema: str, order_id: UUID, reason: str | None, now: datetime) -> None:
    """An order notice (order.paid, order.cancelled, order.completed) on Kafka, through the outbox."""
    event_id = uuid7()
    uow.publish_event(
        event_id, schema, str(order_id), encode_order_notice(schema, event_id, now, order_id, reason), {}
    )


def handle_pay(cmd: PayOrder, uow: UnitOfWork, clock: Clock) -> None:
    """PENDING with stock reserved → PAID (shop.domain.orders.pay). The same payment again is harmless."""
    now = clock()
    with uow:
        order = _lock_own_order(uow, cmd.order_id, cmd.user_id)
        paid = pay(order, cmd.payment_reference, now)
        if paid is None:
            return
        change(uow, order, [paid], now)
        notify(uow, ORDER_PAID, cmd.order_id, None, now)


def cancel_order(uow: UnitOfWork, order: Order, reason: CancelReason, now: datetime) -> None:
    """PENDING → CANCELLED on an order the caller has locked; order.cancelled makes the inventory
    release its stock."""
    change(uow, order, [cancel(order, reason)], now)
    notify(uow, ORDER_CANCELLED, order.id, reason.value, now)


def handle_cancel(cmd: CancelOrder, uow: UnitOfWork, clock: Clock) -> None:
    """PENDING → CANCELLED (customer_request)."""
    now = clock()
    with uow:
        order = _lock_own_order(uow, cmd.order_id, cmd.user_id)
        cancel_order(uow, order, CancelReason.CUSTOMER_REQUEST, now)
