"""One database's outbox stuck on a record Kafka never takes does not hold up another's: the relay
threads share nothing that one of them can fill."""

from __future__ import annotations

import json
import time
import uuid

import psycopg
from prometheus_client import REGISTRY

from shop.db.outbox import insert_event
from shop.relay import OutboxRelay
from tests.integration.kafka_helpers import consume, headers_of, scratch_topic

ROWS = 6
# Short, so that a stuck record keeps failing and being produced again throughout the test (the
# broker creates no topic on first use, so a record for a missing one waits until this passes).
MESSAGE_TIMEOUT_MS = 6_000


def _published(url: str, event_id: uuid.UUID) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT published_at FROM outbox WHERE event_id = %s", (event_id,)).fetchone()
    assert row is not None
    return row[0] is not None


def _wait_for_leases(databases: list[str], timeout: float = 60) -> None:
    """Another relay (a running stack's) may hold a lease: this test is about this relay's threads."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(REGISTRY.get_sample_value("shop_relay_leader", {"database": d}) == 1 for d in databases):
            return
        time.sleep(0.1)
    raise AssertionError(f"another relay holds the lease of {databases}: stop it and run again")


def _wait_for_backlog(url: str, timeout: float = 60) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        last = conn.execute("SELECT coalesce(max(id), 0) FROM outbox").fetchone()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            left = conn.execute(
                "SELECT count(*) FROM outbox WHERE published_at IS NULL AND id <= %s", last
            ).fetchone()
            if left == (0,):
                return
            time.sleep(0.1)
    raise AssertionError(f"the relay did not catch up with {url.rsplit('/', 1)[-1]}'s outbox")


def test_a_record_that_can_never_be_delivered_holds_up_no_other_database(settings):
    catalog = settings.databases["catalog"].primary_url
    orders = settings.databases["orders"].primary_url
    bootstrap = settings.kafka_bootstrap
    stuck = uuid.uuid4()
    relay = OutboxRelay(
        {"catalog": catalog, "orders": orders},
        {
            "bootstrap.servers": bootstrap,
            "message.timeout.ms": MESSAGE_TIMEOUT_MS,
            # A missing topic may be one just created: librdkafka holds its records for this long
            # before failing them at once. Longer than the test, so each waits until it times out.
            "topic.metadata.propagation.max.ms": 600_000,
        },
        rabbitmq_url=settings.rabbitmq_url,  # other tests leave rows for RabbitMQ in these outboxes
        poll_interval=0.2,
        max_backoff=0.5,
    )
    try:
        with scratch_topic(bootstrap, partitions=1) as topic:
            relay.start()
            _wait_for_leases(["catalog", "orders"])
            for url in (catalog, orders):  # other tests' rows: measured from here, they would count
                _wait_for_backlog(url)
            # One row first, unmeasured: the orders thread's producer learns the new topic's leader
            # (seconds on a busy machine), which is not what this test measures.
            warm_up = uuid.uuid4()
            with psycopg.connect(orders) as conn:
                insert_event(conn, warm_up, topic, "k", {"n": -1})
            deadline = time.monotonic() + 60
            while not _published(orders, warm_up) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert _published(orders, warm_up), "the relay did not publish a row to the new topic"
            with psycopg.connect(catalog) as conn:
                insert_event(conn, stuck, f"missing.{uuid.uuid4().hex[:12]}", "k", {"never": "delivered"})
            time.sleep(1)  # the catalog's relay thread has produced it and waits
            delays = []
            ids = []
            # Spread over twice the stuck record's timeout: some rows are written while it is being
            # produced again, some while it waits for its acknowledgement.
            for n in range(ROWS):
                event_id = uuid.uuid4()
                ids.append(event_id)
                with psycopg.connect(orders) as conn:
                    insert_event(conn, event_id, topic, "k", {"n": n})
                written = time.monotonic()
                deadline = written + MESSAGE_TIMEOUT_MS / 1000 + 5
                while not _published(orders, event_id) and time.monotonic() < deadline:
                    time.sleep(0.05)
                # Marked sent only once Kafka acknowledged it (published_at is the claim's time).
                delays.append(round(time.monotonic() - written, 2) if _published(orders, event_id) else None)
                time.sleep(2 * MESSAGE_TIMEOUT_MS / 1000 / ROWS)
            messages = consume(bootstrap, topic, ROWS + 2, timeout=5)[1:]  # past the warm-up row
            assert not _published(catalog, stuck), "the record for a missing topic is not sent"
    finally:
        relay.stop()
        with psycopg.connect(catalog) as conn:
            conn.execute("DELETE FROM outbox WHERE event_id = %s", (stuck,))

    assert all(d is not None for d in delays), f"orders rows left unpublished: {delays}"
    slow = [d for d in delays if d is not None and d > 2]
    assert not slow, f"orders rows waited for the catalog's stuck record: {delays}"
    # Each published once: none was produced again because another database's batch failed.
    assert [json.loads(m.value() or b"")["n"] for m in messages] == list(range(ROWS))
    assert [headers_of(m)["event_id"].decode() for m in messages] == [str(i) for i in ids]
