"""Order timers on the real `orders` database: recorded at placement, fired once, swept when lost."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shop.db.timers import MAX_SWEEP_FAILURES
from shop.db.unit_of_work import UnitOfWork
from shop.domain.idempotency import request_fingerprint
from shop.domain.orders import EventForUnknownOrder, InvalidTransition, OrderLine
from shop.domain.timers import Outcome, TimerPolicy
from shop.handlers import timers as timer_handlers
from shop.handlers.orders import PayOrder, PlaceOrder, handle_pay, handle_place_order
from shop.handlers.timers import Fired, fire_trigger, sweep
from tests.integration.db_helpers import priced_product

DATABASE = "orders"
POOL_SIZE = 10

POLICY = TimerPolicy.from_seconds([10, 20], 30)


@pytest.fixture(scope="module")
def product(pool) -> uuid.UUID:
    return priced_product(pool, "Timer mug", "TM")


def at(moment: datetime):
    return lambda: moment


def long_ago() -> datetime:
    """A placement time a year back. A sweep whose clock is set a few seconds after it sees this
    test's timers alone, however many timers other tests (or a stack on the same database) left due
    since: a sweep takes the oldest first, up to its limit."""
    return datetime.now(UTC) - timedelta(days=365)


def place(pool, product, placed_at: datetime, policy: TimerPolicy = POLICY) -> uuid.UUID:
    lines = [OrderLine(product, 2)]
    body = {"items": [{"product_id": str(product), "quantity": 2}]}
    command = PlaceOrder(
        uuid.uuid4(), uuid.uuid4(), "k", request_fingerprint(body), lines, "buyer@example.test"
    )
    return handle_place_order(command, lambda: UnitOfWork(pool), at(placed_at), policy).order_id


def timers_of(pool, order_id) -> dict[str, tuple[Any, ...]]:
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT kind, due_at, fired_at, fired_by, outcome FROM order_timers WHERE order_id = %s",
            (order_id,),
        ).fetchall()
    return {row[0]: row[1:] for row in rows}


def emails_of(pool, order_id) -> list[dict[str, Any]]:
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT payload->'kwargs' FROM outbox WHERE topic = 'mail'"
            " AND payload->'kwargs'->>'dedupe_key' LIKE %s ORDER BY id",
            (f"%{order_id}%",),
        ).fetchall()
    return [row[0] for row in rows]


def events_of(pool, order_id) -> list[tuple[str, Any]]:
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT topic, payload FROM outbox WHERE destination = 'kafka' AND message_key = %s ORDER BY id",
            (str(order_id),),
        ).fetchall()
    return [(row[0], row[1]) for row in rows]


def order_state(pool, order_id) -> tuple[str, str | None]:
    with pool.connection() as conn:
        row = conn.execute("SELECT status, cancel_reason FROM orders WHERE id = %s", (order_id,)).fetchone()
    assert row is not None
    return row[0], row[1]


def fire(pool, order_id, kind: str, moment: datetime):
    return fire_trigger(order_id, kind, UnitOfWork(pool), at(moment))


def fired_with(pool, order_id, kind: str, moment: datetime, outcome: Outcome) -> Fired:
    """The trigger of the order's `kind` timer at `moment`, which must fire it with `outcome`."""
    fired = fire(pool, order_id, kind, moment)
    assert fired is not None
    assert fired.outcome is outcome
    return fired


def _triggers(pool, order_id) -> list[tuple[str, str, str, int]]:
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT topic, payload FROM outbox WHERE destination = 'rabbitmq'"
            " AND payload->'kwargs'->>'order_id' = %s ORDER BY id",
            (str(order_id),),
        ).fetchall()
    return [(topic, p["actor_name"], p["kwargs"]["kind"], p["delay_ms"]) for topic, p in rows]


def test_placing_an_order_records_its_timers_and_triggers_the_first_each_timer_the_next(pool, product):
    t0 = datetime.now(UTC) - timedelta(seconds=31)
    order_id = place(pool, product, t0)
    timers = timers_of(pool, order_id)
    assert {kind: row[0] for kind, row in timers.items()} == {
        "reminder_1": t0 + timedelta(seconds=10),
        "reminder_2": t0 + timedelta(seconds=20),
        "expiry": t0 + timedelta(seconds=30),
    }
    assert all(row[1] is None for row in timers.values())
    # Two triggers wait in RabbitMQ per order, not one per timer: the first reminder's and the expiry's.
    assert _triggers(pool, order_id) == [
        ("timers", "send_payment_reminder", "reminder_1", 10_000),
        ("timers", "expire_order", "expiry", 30_000),
    ]
    # Each reminder that fires sends the next one's, delayed by the gap between their due times.
    fire(pool, order_id, "reminder_1", t0 + timedelta(seconds=10))
    fire(pool, order_id, "reminder_2", t0 + timedelta(seconds=20))
    fire(pool, order_id, "expiry", t0 + timedelta(seconds=30))
    assert _triggers(pool, order_id)[2:] == [("timers", "send_payment_reminder", "reminder_2", 10_000)]
    # A duplicate trigger fires nothing, and sends nothing on.
    assert fire(pool, order_id, "reminder_1", t0 + timedelta(seconds=21)) is None
    assert len(_triggers(pool, order_id)) == 3


def test_the_sweeper_carries_the_chain_on_when_a_trigger_was_lost(pool, product):
    t0 = long_ago()
    order_id = place(pool, product, t0)
    swept = sweep(lambda: UnitOfWork(pool), at(t0 + timedelta(seconds=15)), timedelta(seconds=2), 100)
    assert swept >= 1
    assert timers_of(pool, order_id)["reminder_1"][2] == "sweeper"
    assert _triggers(pool, order_id)[-1] == ("timers", "send_payment_reminder", "reminder_2", 10_000)


def test_a_reminder_is_emailed_once_with_the_lines_and_the_time_left(pool, product):
    t0 = datetime.now(UTC) - timedelta(seconds=11)
    order_id = place(pool, product, t0)
    fired = fired_with(
        pool, order_id, "reminder_1", t0 + timedelta(seconds=10, milliseconds=400), Outcome.REMINDED
    )
    assert fired.lateness == timedelta(milliseconds=400)
    assert fire(pool, order_id, "reminder_1", t0 + timedelta(seconds=11)) is None  # a duplicate trigger
    (email,) = emails_of(pool, order_id)
    assert email["template"] == "payment_reminder"
    assert email["to"] == "buyer@example.test"
    assert email["dedupe_key"] == f"order-reminder:{order_id}:reminder_1"
    context = email["context"]
    assert (context["reminder"], context["total"], context["currency"]) == (1, "9.00", "EUR")
    assert context["time_left"] == "19 seconds"
    assert context["lines"] == [
        {"name": "Timer mug", "quantity": 2, "unit_price": "4.50", "line_total": "9.00"}
    ]
    assert timers_of(pool, order_id)["reminder_1"][2:] == ("trigger", "reminded")
    assert order_state(pool, order_id) == ("PENDING", None)


def test_an_early_trigger_fires_nothing_and_leaves_the_timer_to_the_sweeper(pool, product):
    t0 = datetime.now(UTC)
    order_id = place(pool, product, t0)
    assert fire(pool, order_id, "expiry", t0 + timedelta(seconds=5)) is None
    assert timers_of(pool, order_id)["expiry"][1] is None
    assert order_state(pool, order_id) == ("PENDING", None)


def test_a_trigger_for_a_timer_that_does_not_exist_is_poison(pool, product):
    t0 = datetime.now(UTC)
    with pytest.raises(EventForUnknownOrder):
        fire(pool, uuid.uuid4(), "expiry", t0)
    order_id = place(pool, product, t0)
    with pytest.raises(EventForUnknownOrder):
        fire(pool, order_id, "reminder_9", t0 + timedelta(days=2))  # no such reminder on this order


def test_expiry_cancels_an_unpaid_order_with_its_event_and_email(pool, product):
    t0 = datetime.now(UTC) - timedelta(seconds=31)
    order_id = place(pool, product, t0)
    fired_with(pool, order_id, "expiry", t0 + timedelta(seconds=30), Outcome.CANCELLED)
    assert order_state(pool, order_id) == ("CANCELLED", "payment_timeout")
    topic, payload = events_of(pool, order_id)[-1]
    assert (topic, payload["reason"]) == ("order.cancelled", "payment_timeout")
    (email,) = emails_of(pool, order_id)
    assert (email["template"], email["context"]["reason"]) == ("order_cancelled", "payment_timeout")
    # Its reminders were due too, their triggers not taken yet: the expiry's trigger fired them
    # along with it, after the cancellation, so they sent nothing and are marked so; their own
    # triggers, arriving later, find them fired.
    assert {kind: row[3] for kind, row in timers_of(pool, order_id).items()} == {
        "expiry": Outcome.CANCELLED,
        "reminder_1": Outcome.SKIPPED,
        "reminder_2": Outcome.SKIPPED,
    }
    assert fire(pool, order_id, "reminder_2", t0 + timedelta(seconds=32)) is None
    assert len(emails_of(pool, order_id)) == 1


def _paid(pool, product, t0: datetime) -> uuid.UUID:
    order_id = place(pool, product, t0)
    with pool.connection() as conn:
        conn.execute("UPDATE orders SET stock = 'reserved' WHERE id = %s", (order_id,))
        user_id = conn.execute("SELECT user_id FROM orders WHERE id = %s", (order_id,)).fetchone()[0]
    handle_pay(PayOrder(order_id, user_id, "pay-1"), UnitOfWork(pool), at(t0 + timedelta(seconds=12)))
    return order_id


def test_expiry_completes_a_paid_order_and_later_reminders_send_nothing(pool, product):
    t0 = datetime.now(UTC) - timedelta(seconds=31)
    order_id = _paid(pool, product, t0)
    fired_with(pool, order_id, "reminder_2", t0 + timedelta(seconds=20), Outcome.SKIPPED)
    fired_with(pool, order_id, "expiry", t0 + timedelta(seconds=30), Outcome.COMPLETED)
    assert order_state(pool, order_id) == ("COMPLETED", None)
    assert [topic for topic, _ in events_of(pool, order_id)] == [
        "order.created",
        "order.paid",
        "order.completed",
    ]
    (email,) = emails_of(pool, order_id)
    assert email["template"] == "order_completed"
    assert email["context"] == {"order_id": str(order_id), "total": "9.00", "currency": "EUR"}


def test_an_order_past_its_expiry_cannot_be_paid(pool, product):
    t0 = datetime.now(UTC) - timedelta(seconds=40)
    order_id = place(pool, product, t0)
    with pool.connection() as conn:
        conn.execute("UPDATE orders SET stock = 'reserved' WHERE id = %s", (order_id,))
        user_id = conn.execute("SELECT user_id FROM orders WHERE id = %s", (order_id,)).fetchone()[0]
    with pytest.raises(InvalidTransition, match="expired"):
        handle_pay(PayOrder(order_id, user_id, "late"), UnitOfWork(pool), at(t0 + timedelta(seconds=30)))


def test_two_sweepers_fire_every_overdue_timer_exactly_once(pool, product):
    # Reminders overdue (placed 15 s ago, reminders at 1 s and 2 s), expiry an hour away.
    policy = TimerPolicy.from_seconds([1, 2], 3600)
    placed_at = long_ago()
    orders = [place(pool, product, placed_at, policy) for _ in range(30)]
    counts: list[int] = []

    def sweeper() -> None:
        counts.append(
            sweep(
                lambda: UnitOfWork(pool), at(placed_at + timedelta(seconds=15)), timedelta(seconds=1), 10_000
            )
        )

    threads = [threading.Thread(target=sweeper) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(counts) >= 60
    for order_id in orders:
        timers = timers_of(pool, order_id)
        assert timers["reminder_1"][2:] == ("sweeper", "reminded")
        assert timers["reminder_2"][2:] == ("sweeper", "reminded")
        assert timers["expiry"][1] is None  # not due
        assert [e["dedupe_key"].rsplit(":", 1)[1] for e in emails_of(pool, order_id)] == [
            "reminder_1",
            "reminder_2",
        ]


def test_a_timer_that_keeps_failing_is_counted_and_does_not_block_the_others(pool, product, monkeypatch):
    policy = TimerPolicy.from_seconds([], 1)
    placed_at = long_ago()
    poison, healthy = place(pool, product, placed_at, policy), place(pool, product, placed_at, policy)
    real_fire = timer_handlers._fire_locked

    def fire_unless_poison(uow, timer, order, now, fired_by):
        if timer.order_id == poison:
            raise RuntimeError("this timer cannot be fired")
        return real_fire(uow, timer, order, now, fired_by)

    monkeypatch.setattr(timer_handlers, "_fire_locked", fire_unless_poison)
    for _ in range(MAX_SWEEP_FAILURES + 2):
        sweep(lambda: UnitOfWork(pool), at(placed_at + timedelta(seconds=10)), timedelta(seconds=1), 10_000)
    assert order_state(pool, healthy) == ("CANCELLED", "payment_timeout")
    assert order_state(pool, poison) == ("PENDING", None)
    with pool.connection() as conn:
        failures, error = conn.execute(
            "SELECT sweep_failures, last_error FROM order_timers WHERE order_id = %s", (poison,)
        ).fetchone()
    assert failures == MAX_SWEEP_FAILURES
    assert "this timer cannot be fired" in error
    assert emails_of(pool, poison) == []  # the failed attempts left no half-written email behind


def test_a_trigger_fires_the_other_timers_due_along_with_its_own_each_once(pool, product):
    """When many timers fall due together the first trigger taken fires them all in its
    transaction, in due order; the triggers behind it find theirs fired and do nothing."""
    t0 = datetime.now(UTC) - timedelta(seconds=31)
    with UnitOfWork(pool) as uow:  # what earlier tests left due before these orders' first timer
        timer_handlers._fire_due_along(uow, t0 + timedelta(seconds=9), 100_000)
    orders = [place(pool, product, t0) for _ in range(3)]
    fired_with(pool, orders[0], "reminder_2", t0 + timedelta(seconds=20), Outcome.REMINDED)
    for order_id in orders:  # every reminder due by then went out, once
        assert [e["template"] for e in emails_of(pool, order_id)] == ["payment_reminder"] * 2
    fired_with(pool, orders[1], "expiry", t0 + timedelta(seconds=30), Outcome.CANCELLED)
    for order_id in orders:
        assert order_state(pool, order_id) == ("CANCELLED", "payment_timeout")
        timers = timers_of(pool, order_id)
        assert {kind: (row[2], row[3]) for kind, row in timers.items()} == {
            "reminder_1": ("trigger", "reminded"),
            "reminder_2": ("trigger", "reminded"),
            "expiry": ("trigger", "cancelled"),
        }
    # Their own triggers, arriving afterwards, fire nothing and send nothing.
    for order_id in orders:
        for kind in ("reminder_1", "reminder_2", "expiry"):
            assert fire(pool, order_id, kind, t0 + timedelta(seconds=31)) is None
        assert [e["template"] for e in emails_of(pool, order_id)] == [
            "payment_reminder",
            "payment_reminder",
            "order_cancelled",
        ]
