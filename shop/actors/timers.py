"""Timer actors on queue `timers`, fed by the delay queues when an order's timer falls due.

Each re-reads the order under a lock and fires the timer at most once (shop.handlers.timers): a
duplicate trigger, or one the sweeper beat, is acknowledged and does nothing. No actor here waits:
the hours between placement and due time are spent in RabbitMQ's delay queues, not in a worker.
"""

from __future__ import annotations

from uuid import UUID

import dramatiq

from shop import bootstrap
from shop.db.unit_of_work import UnitOfWork
from shop.domain.orders import EventForUnknownOrder
from shop.domain.timers import EXPIRY, reminder_number
from shop.handlers.timers import fire_trigger
from shop.names import EXPIRY_ACTOR, REMINDER_ACTOR, TIMER_QUEUE

# A database restart is waited out with backoff; past the last retry the sweeper still fires the timer.
MAX_RETRIES, MIN_BACKOFF_MS, MAX_BACKOFF_MS = 8, 1_000, 60_000
# A trigger that can never fire (no such timer, a malformed id or kind) is dead-lettered at once,
# with the error that says why, instead of being retried for minutes.
POISON = (EventForUnknownOrder, ValueError)


def _fire(order_id: str, kind: str) -> None:
    pool = bootstrap.primary_pool("orders")
    fire_trigger(UUID(order_id), kind, UnitOfWork(pool), bootstrap.utc_now)


@dramatiq.actor(
    actor_name=REMINDER_ACTOR,
    queue_name=TIMER_QUEUE,
    max_retries=MAX_RETRIES,
    min_backoff=MIN_BACKOFF_MS,
    max_backoff=MAX_BACKOFF_MS,
    throws=POISON,
)
def send_payment_reminder(order_id: str, kind: str) -> None:
    """Emails a payment reminder if the order is still PENDING and this reminder was not sent yet."""
    if reminder_number(kind) is None:
        raise ValueError(f"not a reminder timer: {kind!r}")
    _fire(order_id, kind)


@dramatiq.actor(
    actor_name=EXPIRY_ACTOR,
    queue_name=TIMER_QUEUE,
    max_retries=MAX_RETRIES,
    min_backoff=MIN_BACKOFF_MS,
    max_backoff=MAX_BACKOFF_MS,
    throws=POISON,
)
def expire_order(order_id: str, kind: str = EXPIRY) -> None:
    """PENDING → CANCELLED (payment_timeout), PAID → COMPLETED; anything else stays as it is."""
    if kind != EXPIRY:
        raise ValueError(f"not an expiry timer: {kind!r}")
    _fire(order_id, kind)
