"""Placing orders on the real `orders` database: idempotency without Redis, pricing, the trigger."""

from __future__ import annotations

import itertools
import threading
import uuid
from datetime import datetime

import psycopg
import pytest

from shop.db.unit_of_work import UnitOfWork
from shop.domain.idempotency import IdempotencyKeyReused, request_fingerprint
from shop.domain.orders import ALLOWED, OrderLine, Status, UnknownProduct
from shop.domain.timers import TimerPolicy
from shop.handlers.orders import (
    CancelOrder,
    PlaceOrder,
    handle_cancel,
    handle_place_order,
    handle_stock_outcome,
)
from shop.schemas.orders import STOCK_REJECTED, OrderNoticeV1
from tests.integration.db_helpers import now, priced_product

DATABASE = "orders"
POOL_SIZE = 25  # twenty placements at once

DAY_WITH_REMINDERS = TimerPolicy.from_seconds([4 * 3600, 12 * 3600, 22 * 3600], 24 * 3600)


@pytest.fixture
def product(pool) -> uuid.UUID:
    return priced_product(pool, "Mug", "IT")


def place(pool, user: uuid.UUID, key: str, lines: list[OrderLine]):
    body = {"items": [{"product_id": str(line.product_id), "quantity": line.quantity} for line in lines]}
    command = PlaceOrder(uuid.uuid4(), user, key, request_fingerprint(body), lines)
    return handle_place_order(command, lambda: UnitOfWork(pool), now, DAY_WITH_REMINDERS)


def test_an_order_is_priced_and_written_with_its_event(pool, product):
    placed = place(pool, uuid.uuid4(), "k1", [OrderLine(product, 3)])
    assert placed.created
    with pool.connection() as conn:
        order = conn.execute(
            "SELECT status, stock, total_cents, currency FROM orders WHERE id = %s", (placed.order_id,)
        ).fetchone()
        event = conn.execute(
            "SELECT topic, payload FROM outbox WHERE message_key = %s", (str(placed.order_id),)
        ).fetchone()
    assert order == ("PENDING", "reserving", 1350, "EUR")
    assert event is not None
    assert event[0] == "order.created"
    assert event[1]["lines"] == [{"product_id": str(product), "quantity": 3, "unit_price_cents": 450}]


def test_the_same_key_replays_and_another_body_is_refused(pool, product):
    user = uuid.uuid4()
    first = place(pool, user, "same", [OrderLine(product, 1)])
    again = place(pool, user, "same", [OrderLine(product, 1)])
    assert (again.order_id, again.created) == (first.order_id, False)
    with pytest.raises(IdempotencyKeyReused):
        place(pool, user, "same", [OrderLine(product, 2)])
    other_user = place(pool, uuid.uuid4(), "same", [OrderLine(product, 1)])
    assert other_user.created


def test_twenty_concurrent_twins_without_any_redis_lock_make_one_order(pool, product):
    user = uuid.uuid4()
    barrier = threading.Barrier(20)
    results = []

    def twin() -> None:
        barrier.wait()
        results.append(place(pool, user, "flash", [OrderLine(product, 1)]))

    threads = [threading.Thread(target=twin) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 20
    assert len({r.order_id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    with pool.connection() as conn:
        assert conn.execute("SELECT count(*) FROM orders WHERE user_id = %s", (user,)).fetchone() == (1,)


def test_an_unknown_product_creates_nothing(pool):
    user = uuid.uuid4()
    with pytest.raises(UnknownProduct):
        place(pool, user, "k", [OrderLine(uuid.uuid4(), 1)])
    with pool.connection() as conn:
        assert conn.execute("SELECT count(*) FROM orders WHERE user_id = %s", (user,)).fetchone() == (0,)


def test_the_database_refuses_an_illegal_transition(pool, product):
    placed = place(pool, uuid.uuid4(), "k", [OrderLine(product, 1)])
    with pool.connection() as conn:
        conn.execute(
            "UPDATE orders SET status = 'CANCELLED', cancel_reason = 'customer_request' WHERE id = %s",
            (placed.order_id,),
        )
    with (
        pool.connection() as conn,
        pytest.raises(psycopg.errors.CheckViolation, match="cannot go from CANCELLED"),
    ):
        conn.execute(
            "UPDATE orders SET status = 'PENDING', cancel_reason = NULL WHERE id = %s", (placed.order_id,)
        )


def _columns_of(status: Status) -> tuple[str, str | None, datetime | None]:
    """(status, cancel_reason, paid_at) that the table's checks accept for `status`."""
    reason = "customer_request" if status is Status.CANCELLED else None
    paid_at = now() if status in (Status.PAID, Status.COMPLETED) else None
    return status.value, reason, paid_at


def test_the_trigger_allows_exactly_the_domains_transitions(pool):
    """The trigger is the last line of defence of shop.domain.orders.ALLOWED: every pair of
    statuses is tried against the real table, in a transaction rolled back at the end."""
    allowed_by_trigger, refusals = set(), []
    with pool.connection() as conn, conn.transaction(force_rollback=True):
        for current, target in itertools.product(Status, Status):
            if current is target:
                continue
            order_id = uuid.uuid4()
            status, reason, paid_at = _columns_of(current)
            conn.execute(
                "INSERT INTO orders (id, user_id, status, cancel_reason, paid_at, total_cents, currency,"
                " created_at, updated_at, expires_at)"
                " VALUES (%s, %s, %s, %s, %s, 0, 'EUR', now(), now(), now())",
                (order_id, uuid.uuid4(), status, reason, paid_at),
            )
            status, reason, paid_at = _columns_of(target)
            try:
                with conn.transaction():
                    conn.execute(
                        "UPDATE orders SET status = %s, cancel_reason = %s, paid_at = %s WHERE id = %s",
                        (status, reason, paid_at, order_id),
                    )
            except psycopg.errors.CheckViolation as exc:
                refusals.append(str(exc))
            else:
                allowed_by_trigger.add((current, target))
    assert all("cannot go from" in refusal for refusal in refusals)
    assert allowed_by_trigger == {(current, target) for current in Status for target in ALLOWED[current]}


def test_a_stock_outcome_for_an_order_that_already_ended_is_recorded_without_a_transition(pool, product):
    """Cancelled while its stock was still reserving: the inventory's answer still arrives (it held
    nothing, or it releases what it held on order.cancelled), and the order must not stay `reserving`."""
    user = uuid.uuid4()
    placed = place(pool, user, "cancel-first", [OrderLine(product, 1)])
    handle_cancel(CancelOrder(placed.order_id, user), UnitOfWork(pool), now)
    rejected = OrderNoticeV1(
        STOCK_REJECTED, uuid.uuid4(), placed.order_id, "cancelled before it was reserved"
    )
    uow = UnitOfWork(pool)
    assert handle_stock_outcome(rejected, uow, now) is True
    assert uow.messages == []  # no out-of-stock email for an order the customer cancelled
    with pool.connection() as conn:
        row = conn.execute(
            "SELECT status, cancel_reason, stock FROM orders WHERE id = %s", (placed.order_id,)
        ).fetchone()
    assert row == ("CANCELLED", "customer_request", "rejected")
