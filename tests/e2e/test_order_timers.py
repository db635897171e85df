"""Order timers end to end, with delays of seconds: reminders, expiry, completion, lost triggers,
and a RabbitMQ crash. Everything real: delay queues in RabbitMQ, emails in Mailpit.

This module runs its own `shop run all` with short timers, on a RabbitMQ vhost of its own, so that
the session's stack (24 h timers) never takes one of its commands. Both stacks share the databases,
Kafka and the relay lease; which relay publishes a trigger does not matter, as each outbox row
carries its delay.
"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pika
import psycopg
import pytest

from harness import mailpit
from harness.http import call
from harness.rabbitmq import create_vhost, management, vhost_url
from harness.stack import ShopStack
from shop.actors.broker import declare_delay_queue
from shop.names import TIMER_QUEUE
from tests.e2e.stack import e2e_stack
from tests.e2e.test_auth import admin_token, get, new_customer
from tests.e2e.test_products import create

REMINDERS, TTL, GRACE = (3.0, 6.0, 9.0), 12.0, 3.0
RABBITMQ_URL = os.environ.get("SHOP_RABBITMQ_URL", "amqp://shop:shop@127.0.0.1:5672/shop")
VHOST = "shop-e2e-timers"
STACK = Path(__file__).resolve().parents[2] / "ops/local/stack.sh"


def _declare_delay_queues(vhost: str) -> None:
    """Declared well before any test crashes the broker: on RabbitMQ 3.10, a quorum queue created
    less than a second before a kill -9 can come back empty, confirmed messages and all. Long-lived
    delay queues never meet that; the sweeper would make up for it if they did."""
    connection = pika.BlockingConnection(pika.URLParameters(vhost_url(RABBITMQ_URL, vhost)))
    try:
        for delay in (*REMINDERS, TTL):
            declare_delay_queue(connection.channel(), TIMER_QUEUE, round(delay * 1000))
    finally:
        connection.close()


@pytest.fixture(scope="module")
def timers_stack() -> Iterator[ShopStack]:
    running = e2e_stack(
        env={
            "SHOP_ORDER_REMINDERS": ",".join(f"{r:g}s" for r in REMINDERS),
            "SHOP_ORDER_TTL": f"{TTL:g}s",
            "SHOP_TIMER_GRACE": f"{GRACE:g}s",
            "SHOP_TIMER_SWEEP_INTERVAL": "1s",
        },
        vhost=VHOST,
    )
    create_vhost(VHOST)  # before the stack starts (it deletes the vhost when it stops): the queues first
    for vhost in ("shop", VHOST):
        _declare_delay_queues(vhost)
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def admin(timers_stack) -> str:
    return admin_token(timers_stack)


@pytest.fixture(scope="module")
def product(timers_stack, admin) -> dict:
    return create(timers_stack, admin, price_cents=1250, stock=1000)


def place(stack, token: str, product: dict, quantity: int = 2) -> dict:
    """Places an order, retrying while the price feed has not delivered the product yet."""
    body = {"items": [{"product_id": product["id"], "quantity": quantity}]}
    deadline = time.monotonic() + 20
    while True:
        response = call(
            stack.base, "POST", "/api/v1/orders", body, token, {"Idempotency-Key": str(uuid.uuid4())}
        )
        if response.status == 201:
            return dict(response.json())
        assert response.json()["error"]["code"] == "unknown_product", response.body
        assert time.monotonic() < deadline, "the price feed never delivered the product"
        time.sleep(0.2)


def order(stack, token: str, order_id: str) -> dict:
    response = get(stack, f"/api/v1/orders/{order_id}", token)
    assert response.status == 200
    return dict(response.json())


def wait_for(stack, token: str, order_id: str, predicate, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        found = order(stack, token, order_id)
        if predicate(found):
            return found
        assert time.monotonic() < deadline, f"order never reached the expected state: {found}"
        time.sleep(0.2)


def stock_available(stack, product_id: str) -> int:
    return int(get(stack, f"/api/v1/products/{product_id}").json()["stock_available"])


def timers(settings, order_id: str) -> dict[str, tuple[str | None, str | None]]:
    """{kind: (fired_by, outcome)} of the order's timers."""
    with psycopg.connect(settings.databases["orders"].primary_url) as conn:
        rows = conn.execute(
            "SELECT kind, fired_by, outcome FROM order_timers WHERE order_id = %s", (order_id,)
        ).fetchall()
    return {row[0]: (row[1], row[2]) for row in rows}


def polled(
    settings,
    query: str,
    params: tuple[Any, ...],
    done: Callable[[tuple[Any, ...]], bool],
    timeout: float,
    failure: str,
    every: float,
) -> tuple[Any, ...]:
    """The row `query` reads on the orders database once `done(row)`, read again every `every`
    seconds; after `timeout` seconds, fails saying `failure` and the last row."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(settings.databases["orders"].primary_url, autocommit=True) as conn:
        while True:
            row = conn.execute(query, params).fetchone()
            assert row is not None
            if done(row):
                return row
            assert time.monotonic() < deadline, f"{failure}: {row}"
            time.sleep(every)


def wait_until_triggers_published(settings, order_id: str, timeout: float = 10) -> None:
    polled(
        settings,
        "SELECT count(*) FILTER (WHERE published_at IS NOT NULL), count(*) FROM outbox"
        " WHERE destination = 'rabbitmq' AND topic = 'timers'"
        " AND payload->'kwargs'->>'order_id' = %s",
        (order_id,),
        lambda row: bool(row[1]) and row[0] == row[1],
        timeout,
        f"timer triggers of {order_id} never left the outbox",
        every=0.1,
    )


def order_mail(address: str) -> list[dict[str, Any]]:
    """The emails to `address` about orders (not the verification code), oldest first."""
    found = [m for m in mailpit.messages_to(address) if "verification" not in m["Subject"]]
    return sorted(found, key=lambda m: m["Created"])


def subjects(address: str, count: int, timeout: float) -> list[str]:
    """Subjects of the order emails to `address`, oldest first, once at least `count` have arrived."""
    deadline = time.monotonic() + timeout
    while len(found := order_mail(address)) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    return [m["Subject"] for m in found]


def reminder(order_id: str) -> str:
    return f"Reminder: order {order_id} is waiting for payment"


def test_an_unpaid_order_is_reminded_three_times_then_cancelled_and_its_stock_released(
    timers_stack, settings, product
):
    email, token = new_customer(timers_stack)
    placed = place(timers_stack, token, product, quantity=3)
    order_id = placed["id"]
    wait_for(timers_stack, token, order_id, lambda o: o["stock"] == "reserved", timeout=10)
    held = stock_available(timers_stack, product["id"])

    cancelled = wait_for(
        timers_stack, token, order_id, lambda o: o["status"] == "CANCELLED", TTL + GRACE + 10
    )
    assert cancelled["cancel_reason"] == "payment_timeout"
    assert subjects(email, 4, timeout=20) == [
        reminder(order_id),
        reminder(order_id),
        reminder(order_id),
        f"Order {order_id} was cancelled",
    ]
    texts = [mailpit.message(m["ID"])["Text"] for m in order_mail(email)]
    assert texts[0].startswith(f"Your order {order_id} is waiting for payment.")
    assert texts[1].startswith(f"This is reminder 2: your order {order_id}")
    assert f"3 x {product['name']} at 12.50 = 37.50 EUR" in texts[2]
    assert "payment_timeout" in texts[3]
    assert timers(settings, order_id) == {
        "reminder_1": ("trigger", "reminded"),
        "reminder_2": ("trigger", "reminded"),
        "reminder_3": ("trigger", "reminded"),
        "expiry": ("trigger", "cancelled"),
    }
    deadline = time.monotonic() + 15  # order.cancelled → Kafka → the inventory agent releases the stock
    while stock_available(timers_stack, product["id"]) != held + 3:
        assert time.monotonic() < deadline, "the stock of the expired order was never released"
        time.sleep(0.2)


def test_an_order_paid_after_the_first_reminder_gets_no_more_reminders_and_completes(
    timers_stack, settings, product
):
    email, token = new_customer(timers_stack)
    order_id = place(timers_stack, token, product)["id"]
    assert subjects(email, 1, timeout=REMINDERS[0] + 10) == [reminder(order_id)]
    paid = call(
        timers_stack.base, "POST", f"/api/v1/orders/{order_id}/pay", {"payment_reference": "ref-1"}, token
    )
    assert paid.status == 200, paid.body
    assert paid.json()["status"] == "PAID"

    completed = wait_for(
        timers_stack, token, order_id, lambda o: o["status"] == "COMPLETED", TTL + GRACE + 10
    )
    assert completed["paid_at"] is not None
    assert subjects(email, 2, timeout=10) == [reminder(order_id), f"Order {order_id} is complete"]
    time.sleep(1)
    assert len(order_mail(email)) == 2
    assert timers(settings, order_id) == {
        "reminder_1": ("trigger", "reminded"),
        "reminder_2": ("trigger", "skipped"),
        "reminder_3": ("trigger", "skipped"),
        "expiry": ("trigger", "completed"),
    }


def _purge_delay_queues() -> list[str]:
    purged = []
    for vhost in ("shop", VHOST):
        for queue in management("GET", f"/api/queues/{urllib.parse.quote(vhost, safe='')}"):
            if queue["name"].startswith("timers.wait."):
                management(
                    "DELETE",
                    f"/api/queues/{urllib.parse.quote(vhost, safe='')}/{queue['name']}/contents",
                )
                purged.append(f"{vhost}/{queue['name']}")
    return purged


def test_with_the_delay_queues_purged_the_sweeper_still_cancels_on_time_plus_grace(
    timers_stack, settings, product
):
    email, token = new_customer(timers_stack)
    started = time.monotonic()
    order_id = place(timers_stack, token, product)["id"]
    wait_until_triggers_published(settings, order_id)
    assert _purge_delay_queues()

    wait_for(timers_stack, token, order_id, lambda o: o["status"] == "CANCELLED", TTL + GRACE + 10)
    # Due at TTL, overdue after the grace, found within a sweep interval (1 s), plus the time to place it.
    assert time.monotonic() - started < TTL + GRACE + 4
    fired = timers(settings, order_id)
    # The purged triggers were the first reminder's and the expiry's (the others are sent as each
    # reminder fires). Those two fire by the sweeper, or by another trigger taken after they fell
    # due (a trigger fires whatever is due along with its own timer: a later reminder's trigger
    # comes as late as the first reminder fired, or another order's); either way, once.
    assert fired["reminder_1"][0] in ("sweeper", "trigger")
    assert fired["expiry"] in (("sweeper", "cancelled"), ("trigger", "cancelled"))
    assert subjects(email, 4, timeout=10)[-1] == f"Order {order_id} was cancelled"


def test_nothing_is_lost_or_sent_twice_when_rabbitmq_crashes_and_restarts(timers_stack, settings, product):
    buyers = [new_customer(timers_stack) for _ in range(3)]
    placed = [(email, token, place(timers_stack, token, product)["id"]) for email, token in buyers]
    for _, _, order_id in placed:
        wait_until_triggers_published(settings, order_id)
    # kill -9: no clean shutdown. Back in about 7 s, so the expiry (12 s) falls due after the restart.
    subprocess.run([str(STACK), "kill", "rabbitmq"], check=True, capture_output=True)
    subprocess.run([str(STACK), "start", "rabbitmq"], check=True, capture_output=True)

    for email, token, order_id in placed:
        wait_for(timers_stack, token, order_id, lambda o: o["status"] == "CANCELLED", TTL + GRACE + 30)
        fired = timers(settings, order_id)
        assert set(fired) == {"reminder_1", "reminder_2", "reminder_3", "expiry"}
        # The expiry's message waited in its delay queue through the crash; it fires the expiry,
        # unless the workers' consumer, reconnecting with backoff after the restart, gets it later
        # than the sweeper's grace: then the sweeper fired it, on time plus grace, and the trigger
        # finds it fired. Either way it fired once, as its email below shows.
        assert fired["expiry"][1] == "cancelled", fired
        reminded = [kind for kind, (_, outcome) in fired.items() if outcome == "reminded"]
        # Every email its timers decided on arrives, and only once (mail actors retrying through the
        # restart may deliver them out of order), but for a reminder whose order was cancelled
        # before its email could go out: that one is dropped as obsolete (nobody pays a cancelled
        # order), and the mail ledger says so.
        sent = sent_reminders(settings, order_id, reminded, timeout=30)
        expected = [reminder(order_id)] * sent + [f"Order {order_id} was cancelled"]
        assert sorted(subjects(email, len(expected), timeout=30)) == sorted(expected), fired
    time.sleep(2)
    for email, _, order_id in placed:
        reminded = [
            kind for kind, (_, outcome) in timers(settings, order_id).items() if outcome == "reminded"
        ]
        assert len(order_mail(email)) == 1 + sent_reminders(settings, order_id, reminded, timeout=5)


def sent_reminders(settings, order_id: str, kinds: list[str], timeout: float) -> int:
    """Of the order's reminders `kinds`, how many the mail worker sent, once it has dealt with each
    (sent it, or dropped it because the order was no longer PENDING)."""
    keys = [f"order-reminder:{order_id}:{kind}" for kind in kinds]
    sent, _ = polled(
        settings,
        "SELECT count(*) FILTER (WHERE sent_at IS NOT NULL),"
        " count(*) FILTER (WHERE sent_at IS NOT NULL OR obsolete_at IS NOT NULL)"
        " FROM mail_deliveries WHERE dedupe_key = ANY(%s)",
        (keys,),
        lambda row: row[1] == len(keys),
        timeout,
        f"reminders of {order_id} never dealt with",
        every=0.2,
    )
    return int(sent)
