"""Timer actors on queue `timers`, fed by the delay queues when an order's timer falls due.

Each re-reads the order under a lock and fires the timer at most once (shop.handlers.timers): a
duplicate trigger, or one the sweeper beat, is acknowledged and does nothing. No actor here waits:
the hours between placement and due time are spent in RabbitMQ's delay queues, not in a worker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

import dramatiq

from shop.dependencies import Dependencies
from shop.domain.orders import EventForUnknownOrder
from shop.domain.timers import EXPIRY, reminder_number
from shop.handlers.timers import fire_trigger
from shop.names import EXPIRY_ACTOR, REMINDER_ACTOR, TIMER_QUEUE

# A database restart is waited out with backoff; past the last retry the sweeper still fires the timer.
MAX_RETRIES, MIN_BACKOFF_MS, MAX_BACKOFF_MS = 8, 1_000, 60_000
# A trigger that can never fire (no such timer, a malformed id or kind) is dead-lettered at once,
# with the error that says why, instead of being retried for minutes.
POISON = (EventForUnknownOrder, ValueError)


@dataclass(frozen=True)
class TimerActors:
    send_payment_reminder: dramatiq.Actor[..., None]
    expire_order: dramatiq.Actor[..., None]


def declare(broker: dramatiq.Broker, needs: Dependencies) -> TimerActors:
    def fire(order_id: str, kind: str) -> None:
        fire_trigger(UUID(order_id), kind, needs.unit_of_work("orders"), needs.clock)

    def send_payment_reminder(order_id: str, kind: str) -> None:
        """Emails a payment reminder if the order is still PENDING and this reminder was not sent yet."""
        if reminder_number(kind) is None:
            raise ValueError(f"not a reminder timer: {kind!r}")
        fire(order_id, kind)

    def expire_order(order_id: str, kind: str = EXPIRY) -> None:
        """PENDING → CANCELLED (payment_timeout), PAID → COMPLETED; anything else stays as it is."""
        if kind != EXPIRY:
            raise ValueError(f"not an expiry timer: {kind!r}")
        fire(order_id, kind)

    def timer_actor(name: str) -> Callable[[Callable[..., None]], dramatiq.Actor[..., None]]:
        return dramatiq.actor(
            broker=broker,
            actor_name=name,
            queue_name=TIMER_QUEUE,
            max_retries=MAX_RETRIES,
            min_backoff=MIN_BACKOFF_MS,
            max_backoff=MAX_BACKOFF_MS,
            throws=POISON,
        )

    return TimerActors(
        timer_actor(REMINDER_ACTOR)(send_payment_reminder), timer_actor(EXPIRY_ACTOR)(expire_order)
    )
