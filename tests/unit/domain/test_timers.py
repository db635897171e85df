from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shop.domain.orders import Status
from shop.domain.timers import (
    EARLY_TOLERANCE,
    EXPIRY,
    Outcome,
    Timer,
    TimerPolicy,
    arrived_early,
    decide,
    describe_time_left,
    format_amount,
    is_timer_kind,
    reminder_kind,
    reminder_number,
    schedule,
)

PLACED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
EXPIRES = PLACED + timedelta(hours=24)


def test_schedule_lists_the_reminders_in_order_then_the_expiry():
    policy = TimerPolicy.from_seconds([4 * 3600, 12 * 3600, 22 * 3600], 24 * 3600)
    assert schedule(PLACED, policy) == [
        Timer("reminder_1", timedelta(hours=4), PLACED + timedelta(hours=4)),
        Timer("reminder_2", timedelta(hours=12), PLACED + timedelta(hours=12)),
        Timer("reminder_3", timedelta(hours=22), PLACED + timedelta(hours=22)),
        Timer(EXPIRY, timedelta(hours=24), PLACED + timedelta(hours=24)),
    ]


def test_every_due_time_is_the_placement_plus_the_delay():
    policy = TimerPolicy.from_seconds([90, 5400.5], 7200)
    for timer in schedule(PLACED, policy):
        assert timer.due_at == PLACED + timer.delay
    assert [t.delay for t in schedule(PLACED, policy)] == [
        timedelta(seconds=90),
        timedelta(seconds=5400.5),
        timedelta(seconds=7200),
    ]


def test_without_reminders_there_is_only_the_expiry():
    assert schedule(PLACED, TimerPolicy.from_seconds([], 3600)) == [
        Timer(EXPIRY, timedelta(hours=1), PLACED + timedelta(hours=1))
    ]


def test_reminder_kinds_are_numbered_from_one():
    assert reminder_kind(1) == "reminder_1"
    assert reminder_kind(12) == "reminder_12"
    assert reminder_number(reminder_kind(7)) == 7


@pytest.mark.parametrize(
    ("kind", "number", "is_kind"),
    [
        ("reminder_1", 1, True),
        ("reminder_3", 3, True),
        ("reminder_10", 10, True),
        ("reminder_22", 22, True),
        ("expiry", None, True),
        ("reminder_0", None, False),
        ("reminder_01", None, False),
        ("reminder_x", None, False),
        ("reminder_", None, False),
        ("reminder_-1", None, False),
        ("reminder_1 ", None, False),
        ("Reminder_1", None, False),
        ("EXPIRY", None, False),
        ("expiry ", None, False),
        ("", None, False),
    ],
)
def test_a_kinds_reminder_number_and_whether_it_names_a_timer(kind, number, is_kind):
    assert reminder_number(kind) == number
    assert is_timer_kind(kind) is is_kind


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (Status.PENDING, Outcome.CANCELLED),
        (Status.PAID, Outcome.COMPLETED),
        (Status.CANCELLED, Outcome.SKIPPED),
        (Status.COMPLETED, Outcome.SKIPPED),
    ],
)
def test_the_expiry_cancels_an_unpaid_order_and_completes_a_paid_one(status, outcome):
    assert decide(EXPIRY, status, EXPIRES, EXPIRES) is outcome
    # However late the expiry fires, it does the same.
    assert decide(EXPIRY, status, EXPIRES + timedelta(days=3), EXPIRES) is outcome


def test_a_reminder_goes_to_a_pending_order_before_its_expiry():
    assert decide("reminder_1", Status.PENDING, PLACED + timedelta(hours=4), EXPIRES) is Outcome.REMINDED
    assert decide("reminder_3", Status.PENDING, EXPIRES - timedelta(microseconds=1), EXPIRES) is (
        Outcome.REMINDED
    )


@pytest.mark.parametrize("late", [timedelta(0), timedelta(seconds=1), timedelta(days=2)])
def test_a_reminder_at_or_after_the_expiry_is_skipped(late):
    assert decide("reminder_2", Status.PENDING, EXPIRES + late, EXPIRES) is Outcome.SKIPPED


@pytest.mark.parametrize("status", [Status.PAID, Status.CANCELLED, Status.COMPLETED])
def test_a_reminder_to_an_order_no_longer_pending_is_skipped(status):
    assert decide("reminder_1", status, PLACED + timedelta(hours=4), EXPIRES) is Outcome.SKIPPED


@pytest.mark.parametrize("kind", ["reminder_0", "reminder_x", "Expiry", "", "cancel"])
def test_an_unknown_kind_is_refused(kind):
    with pytest.raises(ValueError, match="unknown timer kind"):
        decide(kind, Status.PENDING, PLACED, EXPIRES)


def test_the_early_tolerance_is_five_seconds():
    assert timedelta(seconds=5) == EARLY_TOLERANCE


@pytest.mark.parametrize(
    ("offset", "early"),
    [
        (timedelta(hours=-1), True),
        (timedelta(seconds=-5, microseconds=-1), True),
        (timedelta(seconds=-5), False),
        (timedelta(seconds=-4), False),
        (timedelta(0), False),
        (timedelta(seconds=5), False),
        (timedelta(hours=1), False),
    ],
)
def test_arrived_early_only_beyond_the_tolerance(offset, early):
    due = PLACED + timedelta(hours=4)
    assert arrived_early(due + offset, due) is early


@pytest.mark.parametrize(
    ("left", "text"),
    [
        (timedelta(0), "0 seconds"),
        (timedelta(seconds=1), "1 second"),
        (timedelta(seconds=1.9), "1 second"),
        (timedelta(seconds=2), "2 seconds"),
        (timedelta(seconds=59.999), "59 seconds"),
        (timedelta(seconds=60), "1 minute"),
        (timedelta(seconds=119), "1 minute"),
        (timedelta(minutes=2), "2 minutes"),
        (timedelta(minutes=59, seconds=59), "59 minutes"),
        (timedelta(hours=1), "1 hour"),
        (timedelta(hours=1, minutes=1), "1 hour 1 minute"),
        (timedelta(hours=19, minutes=59, seconds=30), "19 hours 59 minutes"),
        (timedelta(hours=2, seconds=59), "2 hours"),
        (timedelta(days=1), "1 day"),
        (timedelta(days=1, hours=2), "1 day 2 hours"),
        (timedelta(days=1, minutes=5), "1 day 5 minutes"),
        (timedelta(days=1, hours=2, minutes=3, seconds=4), "1 day 2 hours"),
        (timedelta(days=3, hours=1), "3 days 1 hour"),
        (timedelta(seconds=-1), "0 seconds"),
        (timedelta(days=-2), "0 seconds"),
    ],
)
def test_describe_time_left(left, text):
    assert describe_time_left(left) == text


@pytest.mark.parametrize(
    ("cents", "text"),
    [
        (0, "0.00"),
        (5, "0.05"),
        (10, "0.10"),
        (99, "0.99"),
        (100, "1.00"),
        (2100, "21.00"),
        (123456, "1234.56"),
        (-5, "-0.05"),
        (-150, "-1.50"),
    ],
)
def test_format_amount(cents, text):
    assert format_amount(cents) == text
