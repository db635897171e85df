"""The outbox relay: committed rows reach Kafka in order, once per relay lease, and are marked."""

from __future__ import annotations

import json
import time
import uuid

import psycopg

from shop.db.outbox import insert_event
from shop.relay import OutboxRelay
from tests.integration.db_helpers import unpublished
from tests.integration.kafka_helpers import consume, headers_of, scratch_topic


def _write_events(url: str, topic: str, count: int, key: str) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(count)]
    with psycopg.connect(url) as conn:  # one transaction, as a handler would write them
        for n, event_id in enumerate(ids):
            insert_event(
                conn, event_id, topic, key, {"n": n}, {"traceparent": f"00-{'a' * 32}-{'b' * 16}-01"}
            )
    return ids


def test_two_relays_publish_every_committed_row_once_in_order(settings):
    url = settings.databases["orders"].primary_url
    bootstrap = settings.kafka_bootstrap
    with scratch_topic(bootstrap, partitions=3) as topic:
        relays = [
            # With RabbitMQ too: other tests leave rows for it (timer triggers, emails) in this outbox.
            OutboxRelay(
                {"orders": url},
                {"bootstrap.servers": bootstrap},
                rabbitmq_url=settings.rabbitmq_url,
                batch_size=7,
                poll_interval=0.2,
            )
            for _ in range(2)
        ]
        for relay in relays:
            relay.start()
        try:
            key = str(uuid.uuid4())
            ids = _write_events(url, topic, 40, key)
            messages = consume(bootstrap, topic, 40, timeout=30)
            extra = consume(bootstrap, topic, 41, timeout=3)
        finally:
            for relay in relays:
                relay.stop()

        assert [m.value() for m in messages] == [f'{{"n":{n}}}'.encode() for n in range(40)]
        assert len(extra) == 40  # nothing was published twice
        assert {m.key() for m in messages} == {key.encode()}
        headers = headers_of(messages[0])
        assert headers["event_id"] == str(ids[0]).encode()
        assert headers["traceparent"].startswith(b"00-")
        deadline = time.monotonic() + 5
        while unpublished(url, topic) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert unpublished(url, topic) == 0


def test_rows_of_an_uncommitted_transaction_are_not_published(settings):
    url = settings.databases["catalog"].primary_url
    bootstrap = settings.kafka_bootstrap
    with scratch_topic(bootstrap, partitions=1) as topic:
        relay = OutboxRelay({"catalog": url}, {"bootstrap.servers": bootstrap}, poll_interval=0.2)
        relay.start()
        try:
            with psycopg.connect(url) as conn:
                insert_event(conn, uuid.uuid4(), topic, "k", {"rolled": "back"})
                conn.rollback()
            _write_events(url, topic, 1, "k")
            messages = consume(bootstrap, topic, 2, timeout=5)
        finally:
            relay.stop()
        assert [m.value() for m in messages] == [b'{"n":0}']


def test_rows_for_rabbitmq_become_dramatiq_messages_with_the_event_id(settings):
    import pika

    from shop.db.outbox import RABBITMQ

    url = settings.databases["auth"].primary_url
    queue = f"relay_test_{uuid.uuid4().hex[:8]}"
    event_id = uuid.uuid4()
    with psycopg.connect(url) as conn:
        insert_event(
            conn,
            event_id,
            queue,
            None,
            {"actor_name": "send_email", "args": [], "kwargs": {"to": "a@example.test"}},
            destination=RABBITMQ,
        )
    relay = OutboxRelay(
        {"auth": url},
        {"bootstrap.servers": settings.kafka_bootstrap},
        rabbitmq_url=settings.rabbitmq_url,
        poll_interval=0.2,
    )
    relay.start()
    channel = pika.BlockingConnection(pika.URLParameters(settings.rabbitmq_url)).channel()
    try:
        body = None
        deadline = time.monotonic() + 15
        while body is None and time.monotonic() < deadline:
            try:
                _method, _props, body = channel.basic_get(queue, auto_ack=True)
            except pika.exceptions.ChannelClosedByBroker:  # the relay has not declared the queue yet
                channel = pika.BlockingConnection(pika.URLParameters(settings.rabbitmq_url)).channel()
            time.sleep(0.1)
    finally:
        relay.stop()
        for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
            channel.queue_delete(name)
    assert body is not None
    message = json.loads(body)
    assert message["message_id"] == str(event_id)
    assert message["actor_name"] == "send_email"
    assert message["kwargs"] == {"to": "a@example.test"}
