"""The mail actor on the real RabbitMQ, PostgreSQL and Mailpit: sent once, deduplicated (whatever
becomes of Redis), retried, dead-lettered; a payment reminder only for a pending order; a
verification code derived from its id.

The actor is declared on a broker of this module's own (`declare_send_email`) on a queue of its own
(quorum, like `mail`, with its .DQ and .XQ; deleted afterwards): the e2e tests' `shop run all`
stays up for the whole pytest session and its workers consume `mail`, and would take these
messages. Every test mails a fresh address, so leftovers in Mailpit cannot satisfy an assertion.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import dramatiq
import pika
import psycopg
import pytest

from shop import bootstrap
from shop.actors.broker import create_broker
from shop.actors.mail import declare_send_email
from shop.domain.auth import code_for
from shop.redis_clients import sync_redis

ROOT = Path(__file__).resolve().parents[2]
MAILPIT = os.environ.get("SHOP_MAILPIT_URL", "http://127.0.0.1:8025")
QUEUE = f"mail_test_{uuid.uuid4().hex[:8]}"
DEAD_LETTER_QUEUE = f"{QUEUE}.XQ"


class Attempts(dramatiq.Middleware):
    """Records every processing of every message, so tests wait for facts instead of sleeping."""

    def __init__(self) -> None:
        self.seen: dict[str, list[tuple[float, BaseException | None]]] = {}
        self._changed = threading.Condition()

    def after_process_message(self, broker, message, *, result=None, exception=None):
        with self._changed:
            self.seen.setdefault(message.message_id, []).append((time.monotonic(), exception))
            self._changed.notify_all()

    def wait(self, message_id: str, *, succeeded: bool = True, failed: int = 0, timeout: float = 15):
        """Wait until the message failed at least `failed` times (and then succeeded, if asked)."""

        def done() -> bool:
            attempts = self.seen.get(message_id, [])
            failures = [a for a in attempts if a[1] is not None]
            return len(failures) >= failed and (not succeeded or any(a[1] is None for a in attempts))

        with self._changed:
            assert self._changed.wait_for(done, timeout), self.seen.get(message_id)
            return list(self.seen[message_id])


@pytest.fixture(scope="module")
def broker():
    broker = create_broker(os.environ["SHOP_RABBITMQ_URL"])
    broker.add_middleware(Attempts())
    yield broker
    broker.close()
    connection = pika.BlockingConnection(pika.URLParameters(os.environ["SHOP_RABBITMQ_URL"]))
    try:
        channel = connection.channel()
        for name in (QUEUE, f"{QUEUE}.DQ", DEAD_LETTER_QUEUE):
            channel.queue_delete(name)
    finally:
        connection.close()


@pytest.fixture(scope="module")
def send_email(broker, settings):
    # Enough attempts to outlast Mailpit's downtime in the retry test whatever the jitter.
    mail = dataclasses.replace(settings.mail, max_retries=20)
    return declare_send_email(broker, mail, bootstrap.build_dependencies(settings).mail, queue_name=QUEUE)


@pytest.fixture(scope="module")
def attempts(broker) -> Attempts:
    return next(m for m in broker.middleware if isinstance(m, Attempts))


@pytest.fixture(scope="module")
def worker(broker, send_email):
    # One per module: a stopped dramatiq Worker leaves its middleware on the broker.
    worker = dramatiq.Worker(broker, queues={QUEUE}, worker_threads=1, worker_timeout=100)
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture
def dedupe_keys(settings):
    keys: list[str] = []
    yield keys
    for database in ("auth", "orders"):
        with psycopg.connect(settings.databases[database].primary_url, autocommit=True) as conn:
            conn.execute("DELETE FROM mail_deliveries WHERE dedupe_key = ANY(%s)", (keys,))


def fresh(dedupe_keys: list[str]) -> tuple[str, str]:
    token = uuid.uuid4().hex[:12]
    dedupe_keys.append(f"test:{token}")
    return f"{token}@example.test", f"test:{token}"


def _get(path: str) -> Any:
    with urllib.request.urlopen(MAILPIT + path, timeout=5) as response:
        return json.load(response)


def mails_to(address: str) -> list[dict[str, Any]]:
    query = urllib.parse.quote(f'to:"{address}"')
    return _get(f"/api/v1/search?query={query}")["messages"]


def wait_for_mails(address: str, timeout: float = 10) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while not (found := mails_to(address)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return found


def stack(verb: str, component: str) -> None:
    subprocess.run([str(ROOT / "ops/local/stack.sh"), verb, component], check=True, capture_output=True)


CONTEXT = {"code": "482913", "expires_minutes": 15}


def test_an_email_arrives_once_with_both_parts_and_its_dedupe_key(send_email, worker, attempts, dedupe_keys):
    to, key = fresh(dedupe_keys)
    message = send_email.send("verification_code", to, CONTEXT, key)
    attempts.wait(message.message_id)

    [summary] = wait_for_mails(to)
    assert summary["Subject"] == "Your shop verification code"
    body = _get(f"/api/v1/message/{summary['ID']}")
    assert "482913" in body["Text"]
    assert "482913" in body["HTML"]
    assert "15 minutes" in body["Text"]
    headers = _get(f"/api/v1/message/{summary['ID']}/headers")
    assert headers["X-Shop-Dedupe-Key"] == [key]
    assert headers["Message-Id"][0].endswith("@shop.local>")


def test_a_second_message_with_the_same_dedupe_key_sends_nothing(send_email, worker, attempts, dedupe_keys):
    to, key = fresh(dedupe_keys)
    first = send_email.send("verification_code", to, CONTEXT, key)
    attempts.wait(first.message_id)
    assert len(wait_for_mails(to)) == 1

    # A redelivery: a new broker message (as after a relay resend) carrying the same email.
    again = send_email.send("verification_code", to, CONTEXT, key)
    attempts.wait(again.message_id)
    time.sleep(0.5)  # give Mailpit time to show a second copy if one had been sent
    assert len(mails_to(to)) == 1


def test_an_email_sent_while_smtp_refuses_arrives_once_when_it_is_back(
    send_email, worker, attempts, dedupe_keys
):
    to, key = fresh(dedupe_keys)
    stack("stop", "mailpit")
    try:
        # Per-message backoff overrides the actor's (5 s doubling to 5 min by default).
        message = send_email.send_with_options(
            args=("verification_code", to, CONTEXT, key), min_backoff=500, max_backoff=2000
        )
        time.sleep(5)
    finally:
        stack("start", "mailpit")

    history = attempts.wait(message.message_id, failed=2, timeout=30)
    failures = [(at, exc) for at, exc in history if exc is not None]
    assert all(isinstance(exc.__cause__, ConnectionRefusedError) for _, exc in failures), failures
    gaps = [later[0] - earlier[0] for earlier, later in itertools.pairwise(history)]
    assert max(gaps) < 3.5, f"backoff above max_backoff=2 s: {gaps}"
    assert len(wait_for_mails(to, timeout=10)) == 1
    time.sleep(0.5)
    assert len(mails_to(to)) == 1


def _take_dead_letter(message_id: str, timeout: float = 15) -> dict[str, Any] | None:
    """Find and ack our message in mail.XQ; everything else there is left as it was."""
    connection = pika.BlockingConnection(pika.URLParameters(os.environ["SHOP_RABBITMQ_URL"]))
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            channel = connection.channel()
            while True:
                method, _properties, body = channel.basic_get(DEAD_LETTER_QUEUE, auto_ack=False)
                if method is None:
                    break
                dead = json.loads(body)
                if dead["message_id"] == message_id:
                    channel.basic_ack(method.delivery_tag)
                    return dead
            channel.close()  # unacked leftovers go back to the queue
            time.sleep(0.2)
        return None
    finally:
        connection.close()


def test_a_poison_message_is_dead_lettered_at_once_and_sends_nothing(
    send_email, worker, attempts, dedupe_keys
):
    to, key = fresh(dedupe_keys)
    message = send_email.send("verification_code", to, {"expires_minutes": 15}, key)  # no code
    [(_, error)] = attempts.wait(message.message_id, succeeded=False, failed=1)
    assert type(error.__cause__).__name__ == "UndefinedError"

    dead = _take_dead_letter(message.message_id)
    assert dead is not None, f"{message.message_id} not in {DEAD_LETTER_QUEUE}"
    assert dead["args"][0] == "verification_code"
    # Dead-lettered as it ended: one attempt, and the error that ended it.
    assert dead["options"]["retries"] == 1
    assert "UndefinedError" in dead["options"]["traceback"]
    time.sleep(0.5)
    assert attempts.seen[message.message_id] == [attempts.seen[message.message_id][0]]
    assert mails_to(to) == []


def _empty_mail_keys_of_redis(settings) -> None:
    """What the chaos run's "Redis emptied" does to the mail: every mail:* key gone."""
    redis = sync_redis(settings.redis_url, settings.redis_cluster)
    try:
        for key in list(redis.scan_iter(match="mail:*", count=1000)):
            redis.delete(key)
    finally:
        redis.close()


def test_a_redelivery_after_redis_was_emptied_sends_nothing(
    settings, send_email, worker, attempts, dedupe_keys
):
    to, key = fresh(dedupe_keys)
    first = send_email.send("verification_code", to, CONTEXT, key)
    attempts.wait(first.message_id)
    assert len(wait_for_mails(to)) == 1

    # The relay republished the row after a RabbitMQ crash, and Redis lost its data meanwhile.
    _empty_mail_keys_of_redis(settings)
    again = send_email.send("verification_code", to, CONTEXT, key)
    attempts.wait(again.message_id)
    time.sleep(0.5)
    assert len(mails_to(to)) == 1


def test_a_verification_email_named_by_its_code_id_shows_the_code_derived_from_it(
    settings, send_email, worker, attempts, dedupe_keys
):
    to, _ = fresh(dedupe_keys)
    code_id = uuid.uuid4()
    key = f"verification-code:{code_id}"
    dedupe_keys.append(key)
    message = send_email.send("verification_code", to, {"code_id": str(code_id), "expires_minutes": 10}, key)
    attempts.wait(message.message_id)

    [summary] = wait_for_mails(to)
    body = _get(f"/api/v1/message/{summary['ID']}")
    code = code_for(settings.auth.code_pepper, code_id)
    assert code in body["Text"]
    assert code in body["HTML"]
    assert "10 minutes" in body["Text"]
    assert str(code_id) not in body["Text"]


@pytest.fixture
def order(settings):
    """Inserts an order in the orders database with the given status; deletes them afterwards."""
    url = settings.databases["orders"].primary_url
    made: list[uuid.UUID] = []

    def insert(status: str) -> uuid.UUID:
        order_id = uuid.uuid4()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO orders (id, user_id, status, total_cents, currency, created_at, updated_at,"
                " paid_at, expires_at, customer_email)"
                " VALUES (%s, %s, %s, 900, 'EUR', now(), now(), CASE WHEN %s THEN now() END,"
                " now() + interval '1 day', 'buyer@example.test')",
                (order_id, uuid.uuid4(), status, status == "PAID"),
            )
        made.append(order_id)
        return order_id

    yield insert
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM orders WHERE id = ANY(%s)", (made,))


def _remind(send_email, to: str, order_id: uuid.UUID, dedupe_keys: list[str]):
    key = f"order-reminder:{order_id}:reminder_1"
    dedupe_keys.append(key)
    context = {
        "order_id": str(order_id),
        "reminder": 1,
        "total": "9.00",
        "currency": "EUR",
        "expires_at": "2026-12-08 10:00 UTC",
        "time_left": "23 hours",
        "lines": [{"name": "Mug", "quantity": 2, "unit_price": "4.50", "line_total": "9.00"}],
    }
    return send_email.send("payment_reminder", to, context, key)


def test_a_payment_reminder_for_an_order_paid_meanwhile_is_not_sent(
    settings, send_email, worker, attempts, dedupe_keys, order
):
    to, _ = fresh(dedupe_keys)
    order_id = order("PAID")
    message = _remind(send_email, to, order_id, dedupe_keys)
    attempts.wait(message.message_id)
    time.sleep(0.5)
    assert mails_to(to) == []
    with psycopg.connect(settings.databases["orders"].primary_url) as conn:
        row = conn.execute(
            "SELECT sent_at, obsolete_at FROM mail_deliveries WHERE dedupe_key = %s",
            (f"order-reminder:{order_id}:reminder_1",),
        ).fetchone()
    assert row is not None
    sent_at, obsolete_at = row
    assert sent_at is None
    assert obsolete_at is not None, "recorded: the chaos run's check expects no email for it"


def test_a_payment_reminder_for_a_pending_order_is_sent(send_email, worker, attempts, dedupe_keys, order):
    to, _ = fresh(dedupe_keys)
    message = _remind(send_email, to, order("PENDING"), dedupe_keys)
    attempts.wait(message.message_id)
    [summary] = wait_for_mails(to)
    assert summary["Subject"].startswith("Reminder: order ")
