"""Order timers: when each one falls due, and what firing it does. No I/O.

An order placed at `t` has one reminder timer per configured delay (`reminder_1`, `reminder_2`,
...) and one `expiry` at `t + ttl`. The due times are the truth (PostgreSQL); the delayed RabbitMQ
message of each timer is only a trigger, and a timer may be fired by that trigger or, when the
trigger is lost, by the sweeper. Whoever fires it first decides its outcome; the other finds it fired.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from shop.domain.orders import Status

EXPIRY = "expiry"
_REMINDER = re.compile(r"^reminder_(?P<number>[1-9][0-9]*)$")


def reminder_kind(number: int) -> str:
    return f"reminder_{number}"


def reminder_number(kind: str) -> int | None:
    """1 for `reminder_1`, ...; None for any other kind."""
    match = _REMINDER.match(kind)
    return int(match["number"]) if match else None


def is_timer_kind(kind: str) -> bool:
    return kind == EXPIRY or reminder_number(kind) is not None


@dataclass(frozen=True)
class TimerPolicy:
    """The delays after placement, from `SHOP_ORDER_REMINDERS` and `SHOP_ORDER_TTL`."""

    reminders: tuple[timedelta, ...]
    ttl: timedelta

    @classmethod
    def from_seconds(cls, reminders: Sequence[float], ttl: float) -> TimerPolicy:
        return cls(tuple(timedelta(seconds=r) for r in reminders), timedelta(seconds=ttl))


@dataclass(frozen=True)
class Timer:
    kind: str
    delay: timedelta  # after placement
    due_at: datetime


def schedule(placed_at: datetime, policy: TimerPolicy) -> list[Timer]:
    """Every timer of an order placed at `placed_at`, the reminders in order, the expiry last."""
    timers = [
        Timer(reminder_kind(n), delay, placed_at + delay) for n, delay in enumerate(policy.reminders, start=1)
    ]
    timers.append(Timer(EXPIRY, policy.ttl, placed_at + policy.ttl))
    return timers


class Outcome(StrEnum):
    REMINDED = "reminded"  # the payment reminder email went out
    CANCELLED = "cancelled"  # PENDING at expiry: CANCELLED (payment_timeout)
    COMPLETED = "completed"  # PAID at expiry: COMPLETED
    SKIPPED = "skipped"  # nothing to do: paid, cancelled, or past its expiry already


def decide(kind: str, status: Status, now: datetime, expires_at: datetime) -> Outcome:
    """What firing timer `kind` does to an order in `status`.

    A reminder is for a PENDING order that can still be paid: once the expiry is due (a late
    sweep after an outage), a reminder would only precede the cancellation, so it is skipped.
    """
    if kind == EXPIRY:
        if status is Status.PENDING:
            return Outcome.CANCELLED
        if status is Status.PAID:
            return Outcome.COMPLETED
        return Outcome.SKIPPED
    if reminder_number(kind) is None:
        raise ValueError(f"unknown timer kind {kind!r}")
    if status is Status.PENDING and now < expires_at:
        return Outcome.REMINDED
    return Outcome.SKIPPED


# A trigger that arrives before its timer's due time (a queue whose TTL was changed by hand, clocks
# far apart) does not fire it: the sweeper will, on time plus grace.
EARLY_TOLERANCE = timedelta(seconds=5)


def arrived_early(now: datetime, due_at: datetime) -> bool:
    return now < due_at - EARLY_TOLERANCE


def describe_time_left(left: timedelta) -> str:
    """`timedelta(hours=19, minutes=59, seconds=30)` -> "19 hours 59 minutes"; under a minute, seconds.

    Rounded down: a reminder never promises more time than there is.
    """
    seconds = max(0, int(left.total_seconds()))
    if seconds < 60:
        return _plural(seconds, "second")
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = [_plural(n, unit) for n, unit in ((days, "day"), (hours, "hour"), (minutes, "minute")) if n]
    return " ".join(parts[:2])


def _plural(n: int, unit: str) -> str:
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"


def format_amount(cents: int) -> str:
    """Minor units as a decimal amount with two places: 2100 -> "21.00"."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}{whole}.{part:02d}"
