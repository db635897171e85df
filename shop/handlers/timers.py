"""Firing order timers, from their trigger messages or from the sweeper.

Both paths lock the timer row first, so a timer is fired once whoever comes first: the other finds
`fired_at` set and does nothing. Firing locks the order, decides the outcome (shop.domain.timers),
applies it and marks the timer, all in one transaction with the events and emails it causes.

A trigger is a wake-up: besides its own timer it fires, in the same transaction, up to
`DUE_ALONG` other timers that are due by then (those no one else holds). When many fall due in the
same second (1,000 orders placed each second expire each second a day later), the first trigger to
arrive fires the lot in one commit, and the triggers behind it find their timers fired with one
read each (and a look for other due timers, which finds none); a backlog in the timer queue no
longer makes timers late, since whichever trigger is taken next fires whatever is due. Each timer
still fires once (its row is locked, and a fired one is left alone), in a savepoint of its own, so
one that fails is left to its own trigger.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from prometheus_client import Counter, Histogram

from shop.db import orders as orders_db
from shop.db import timers as db
from shop.db.orders import LockedOrder
from shop.db.unit_of_work import UnitOfWork
from shop.domain.clock import Clock
from shop.domain.orders import CancelReason, EventForUnknownOrder, complete
from shop.domain.timers import (
    EXPIRY,
    Outcome,
    arrived_early,
    decide,
    describe_time_left,
    format_amount,
    reminder_number,
)
from shop.handlers.orders import (
    cancel_order,
    change,
    email_cancellation,
    email_customer,
    notify,
    send_trigger,
)
from shop.schemas.orders import ORDER_COMPLETED

log = logging.getLogger("shop.timers")


TRIGGER, SWEEPER = "trigger", "sweeper"
DUE_ALONG = 200  # other due timers a trigger fires in its transaction

FIRED = Counter("shop_timers_fired_total", "Order timers fired", ["kind", "outcome", "fired_by"])
LATENESS = Histogram(
    "shop_timer_lateness_seconds",
    "How long after its due time a timer fired",
    ["fired_by"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600),
)
SWEEP_FAILURES = Counter("shop_timer_sweep_failures_total", "Timers whose sweep raised an error")


@dataclass(frozen=True)
class Fired:
    outcome: Outcome
    lateness: timedelta


def fire_trigger(order_id: UUID, kind: str, uow: UnitOfWork, clock: Clock) -> Fired | None:
    """A trigger message arrived. None when there is nothing to fire: already fired (a duplicate
    trigger, or the sweeper came first), or early (the sweeper will fire it). A trigger for a timer
    that does not exist cannot be right: `EventForUnknownOrder`, which dead-letters it."""
    with uow:
        now = clock()
        fired = _fire_own(order_id, kind, uow, now)
        _fire_due_along(uow, now, DUE_ALONG)
        return fired


def _fire_own(order_id: UUID, kind: str, uow: UnitOfWork, now: datetime) -> Fired | None:
    fired_already = db.timer_fired(uow.conn, order_id, kind)
    if fired_already is None:
        raise EventForUnknownOrder(f"a {kind} trigger for order {order_id}, which has no such timer")
    if fired_already:
        return None
    locked = db.lock_timer_and_order(uow.conn, order_id, kind)
    assert locked is not None  # timers are never deleted but with their order, which is not
    timer, order = locked
    if timer.fired_at is not None:  # fired between the read and the lock
        return None
    if arrived_early(now, timer.due_at):
        log.warning(
            "timer %s of order %s triggered at %s, before its due time %s: left to a later trigger"
            " or the sweeper",
            kind,
            order_id,
            now.isoformat(),
            timer.due_at.isoformat(),
        )
        return None
    return _fire_locked(uow, timer, order, now, TRIGGER)


def _fire_due_along(uow: UnitOfWork, now: datetime, limit: int) -> int:
    """Fires up to `limit` other timers due by `now` (see the module's doc); how many fired."""
    fired = 0
    for timer, order in db.claim_due(uow.conn, now, limit):
        written = len(uow.messages)
        try:
            with uow.conn.transaction():  # a savepoint: a failure undoes this timer's writes only
                _fire_locked(uow, timer, order, now, TRIGGER)
        except Exception as exc:
            del uow.messages[written:]
            log.warning(
                "timer %s of order %s, due along, failed (%r): left to its own trigger",
                timer.kind,
                timer.order_id,
                exc,
            )
            continue
        fired += 1
    return fired


def sweep(uow_factory: Callable[[], UnitOfWork], clock: Clock, grace: timedelta, limit: int) -> int:
    """Fires up to `limit` timers overdue by more than `grace`, oldest first, one transaction each.

    SKIP LOCKED lets several sweepers share the work; a timer whose firing fails is counted against
    it and skipped by later sweeps once it has failed `db.MAX_SWEEP_FAILURES` times.
    """
    fired = 0
    for _ in range(limit):
        with uow_factory() as uow:
            now = clock()
            timer = db.claim_overdue(uow.conn, now - grace)
            if timer is None:
                break
            written = len(uow.messages)
            try:
                with uow.conn.transaction():  # a savepoint: a failure undoes this timer's writes only
                    order = orders_db.lock_order(uow.conn, timer.order_id)
                    if order is None:  # the foreign key makes this impossible
                        raise LookupError(f"order {timer.order_id} of timer {timer.kind} is gone")
                    _fire_locked(uow, timer, order, now, SWEEPER)
            except Exception as exc:
                del uow.messages[written:]
                failures = db.record_sweep_failure(uow.conn, timer.order_id, timer.kind, repr(exc))
                SWEEP_FAILURES.inc()
                log.error(
                    "sweeping timer %s of order %s failed (%d of %d tries): %r",
                    timer.kind,
                    timer.order_id,
                    failures,
                    db.MAX_SWEEP_FAILURES,
                    exc,
                )
                continue
        fired += 1
    return fired


def _fire_locked(
    uow: UnitOfWork, timer: db.TimerRow, order: LockedOrder, now: datetime, fired_by: str
) -> Fired:
    """Fires `timer` of `order`, both locked by the caller."""
    outcome = decide(timer.kind, order.state.status, now, order.state.expires_at)
    if outcome is Outcome.REMINDED:
        if order.customer_email:
            _email_reminder(uow, timer, order, now)
        else:
            outcome = Outcome.SKIPPED  # placed before orders kept an address: nobody to remind
    elif outcome is Outcome.CANCELLED:
        cancel_order(uow, order.state, CancelReason.PAYMENT_TIMEOUT, now)
        if order.customer_email:
            email_cancellation(uow, timer.order_id, order.customer_email, CancelReason.PAYMENT_TIMEOUT)
    elif outcome is Outcome.COMPLETED:
        change(uow, order.state, [complete(order.state)], now)
        notify(uow, ORDER_COMPLETED, timer.order_id, None, now)
        if order.customer_email:
            email_customer(
                uow,
                "order_completed",
                order.customer_email,
                {
                    "order_id": str(timer.order_id),
                    "total": format_amount(order.total_cents),
                    "currency": order.currency,
                },
                f"order-completed:{timer.order_id}",
            )
    db.mark_fired(uow.conn, timer.order_id, timer.kind, now, fired_by, outcome)
    _trigger_the_next(uow, timer)
    lateness = now - timer.due_at
    FIRED.labels("expiry" if timer.kind == EXPIRY else "reminder", outcome, fired_by).inc()
    LATENESS.labels(fired_by).observe(max(0.0, lateness.total_seconds()))
    return Fired(outcome, lateness)


def _trigger_the_next(uow: UnitOfWork, timer: db.TimerRow) -> None:
    """A reminder sends the trigger of the order's next reminder, to arrive when it falls due (the
    expiry's was sent at placement). The delay is the gap between the two due times, so the delays
    (and RabbitMQ's delay queues, one per delay) are the schedule's few, whatever the moment this one
    fired; fired late (by the sweeper after a lost trigger), the next trigger comes as late, and the
    sweeper fires that reminder on time plus grace."""
    if timer.kind == EXPIRY:
        return
    following = db.next_reminder(uow.conn, timer.order_id, timer.due_at)
    if following is not None:
        send_trigger(uow, timer.order_id, following.kind, following.due_at - timer.due_at)


def _email_reminder(uow: UnitOfWork, timer: db.TimerRow, order: LockedOrder, now: datetime) -> None:
    assert order.customer_email is not None
    lines = db.reminder_lines(uow.conn, timer.order_id)
    email_customer(
        uow,
        "payment_reminder",
        order.customer_email,
        {
            "order_id": str(timer.order_id),
            "reminder": reminder_number(timer.kind),
            "total": format_amount(order.total_cents),
            "currency": order.currency,
            "expires_at": order.state.expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "time_left": describe_time_left(order.state.expires_at - now),
            "lines": [
                {
                    "name": line.name,
                    "quantity": line.quantity,
                    "unit_price": format_amount(line.unit_price_cents),
                    "line_total": format_amount(line.unit_price_cents * line.quantity),
                }
                for line in lines
            ],
        },
        f"order-reminder:{timer.order_id}:{timer.kind}",
    )
