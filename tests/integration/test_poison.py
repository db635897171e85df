"""Poison on every topic the stream agents read: each agent turns an undecodable body, an unknown
schema version, a missing field, and an event about an order nobody knows into a `PoisonMessage`
(which the runner dead-letters with the reason, counts, and goes past: tests/integration/
test_stream_runner.py), and handles a good record of the same topic right after.

The agents are called the way the runner calls them, with a record as Kafka delivers it; the
databases behind them are the real ones."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from confluent_kafka import Message

from shop import bootstrap
from shop.domain.orders import PricedLine
from shop.names import PoisonMessage
from shop.schemas.events import PRODUCT_CREATED, PRODUCT_UPDATED, encode_product_event
from shop.schemas.orders import (
    ORDER_CANCELLED,
    ORDER_CREATED,
    ORDER_PAID,
    STOCK_REJECTED,
    STOCK_RESERVED,
    encode_order_created,
    encode_order_notice,
)
from shop.streams.agents import CONSUMED_TOPICS, stream_agents
from shop.streams.runner import Agent


class Record:
    """A consumed Kafka record: what an agent reads of one."""

    def __init__(self, topic: str, value: bytes | None) -> None:
        self._topic, self._value = topic, value

    def topic(self) -> str:
        return self._topic

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> list[tuple[str, bytes]]:
        return []


@pytest.fixture(scope="module")
def agents(settings) -> dict[str, Agent]:
    """Every agent, as `shop run streams` declares them, on this stack's databases."""
    return stream_agents(bootstrap.build_dependencies(settings))[0]


@pytest.fixture
def deliver(agents) -> Callable[[str, bytes | None], None]:
    """The topic's agent on one record, as the runner calls it."""

    def deliver(topic: str, value: bytes | None) -> None:
        agents[topic](cast(Message, Record(topic, value)))  # a Record reads like a consumed Message

    return deliver


def _now() -> datetime:
    return datetime.now(UTC)


def good_body(topic: str) -> dict[str, Any]:
    """A well-formed event of the topic (about orders and products that need not exist)."""
    if topic in (PRODUCT_CREATED, PRODUCT_UPDATED):
        return encode_product_event(
            schema=topic,
            event_id=uuid.uuid4(),
            occurred_at=_now(),
            product_id=uuid.uuid4(),
            version=1 if topic == PRODUCT_CREATED else 2,
            type="ProductCreated" if topic == PRODUCT_CREATED else "ProductUpdated",
            snapshot={
                "sku": f"P-{uuid.uuid4().hex[:8]}",
                "name": "Poison test",
                "description": "",
                "price_cents": 100,
                "currency": "EUR",
                "stock_available": 1,
                "stock_reserved": 0,
            },
        )
    if topic == ORDER_CREATED:
        line = PricedLine(uuid.uuid4(), 1, 100)
        return encode_order_created(uuid.uuid4(), _now(), uuid.uuid4(), uuid.uuid4(), [line], 100, "EUR")
    return encode_order_notice(topic, uuid.uuid4(), _now(), uuid.uuid4(), None)


def _without(body: dict[str, Any], field: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != field}


POISON: dict[str, Any] = {
    "not JSON": lambda topic: b"\x00\xffnot json",
    "empty": lambda topic: b"",
    "no value": lambda topic: None,
    "a JSON array": lambda topic: b"[1, 2, 3]",
    "another topic's schema": lambda topic: json.dumps(
        {**good_body(topic), "schema": "something.else"}
    ).encode(),
    "unknown major version": lambda topic: json.dumps({**good_body(topic), "schema_version": "2.0"}).encode(),
    "no schema_version": lambda topic: json.dumps(_without(good_body(topic), "schema_version")).encode(),
    "no event_id": lambda topic: json.dumps(_without(good_body(topic), "event_id")).encode(),
    "event_id not a UUID": lambda topic: json.dumps(
        {**good_body(topic), "event_id": "1; DROP TABLE"}
    ).encode(),
}


@pytest.mark.parametrize("topic", sorted(CONSUMED_TOPICS))
@pytest.mark.parametrize("kind", sorted(POISON))
def test_every_agent_calls_every_kind_of_poison_poison(topic, kind, deliver):
    with pytest.raises(PoisonMessage):
        deliver(topic, POISON[kind](topic))


@pytest.mark.parametrize("topic", [STOCK_RESERVED, STOCK_REJECTED, ORDER_PAID])
def test_an_event_about_an_order_nobody_knows_is_poison_and_leaves_no_trace(topic, settings, deliver):
    body = good_body(topic)
    with pytest.raises(PoisonMessage, match=body["order_id"]):
        deliver(topic, json.dumps(body).encode())
    import psycopg

    context = "orders" if topic in (STOCK_RESERVED, STOCK_REJECTED) else "catalog"
    with psycopg.connect(settings.databases[context].primary_url) as conn:
        row = conn.execute("SELECT count(*) FROM inbox WHERE event_id = %s", (body["event_id"],)).fetchone()
    assert row == (0,), "a dead-lettered event is not recorded as handled"


@pytest.mark.parametrize("topic", [PRODUCT_CREATED, PRODUCT_UPDATED, ORDER_CREATED, ORDER_CANCELLED])
def test_a_good_record_of_the_same_topic_is_handled(topic, deliver):
    # order.created for an unknown product is a business answer (stock.rejected), not poison; an
    # order.cancelled that overtook its order is remembered; product events create the price.
    deliver(topic, json.dumps(good_body(topic)).encode())


def test_a_deeply_nested_order_created_is_dead_lettered_and_the_next_record_handled(settings, agents):
    """Through the real runner: json.loads raised RecursionError, which the runner took for a
    transient failure and retried forever, holding up the partition."""
    import time

    from confluent_kafka import Producer

    from shop.streams.runner import StreamRunner
    from tests.integration.kafka_helpers import consume, headers_of, scratch_topic

    bootstrap = settings.kafka_bootstrap
    nested = b"[" * 100_000 + b"]" * 100_000
    good = good_body(ORDER_CREATED)
    with scratch_topic(bootstrap, 1) as topic, scratch_topic(bootstrap, 1, "dlt") as dead_letter:
        producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
        for value in (nested, json.dumps(good).encode()):
            producer.produce(topic, key=good["order_id"].encode(), value=value)
        assert producer.flush(20) == 0
        runner = StreamRunner(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"test-{uuid.uuid4().hex[:8]}",
                "auto.offset.reset": "earliest",
            },
            {"bootstrap.servers": bootstrap},
            {topic: agents[ORDER_CREATED]},
            dead_letter_topic=dead_letter,
            max_backoff=0.2,
        )
        runner.start()
        try:
            deadline = time.monotonic() + 30
            while not _handled(settings, good["event_id"]) and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            runner.stop()
        assert _handled(settings, good["event_id"]), "the good record after the nested one was handled"
        (dead,) = consume(bootstrap, dead_letter, 1)
        assert dead.value() == nested
        assert b"nested too deeply" in headers_of(dead)["x-dead-letter-reason"]


def _handled(settings, event_id: str) -> bool:
    import psycopg

    with psycopg.connect(settings.databases["catalog"].primary_url) as conn:
        row = conn.execute("SELECT count(*) FROM inbox WHERE event_id = %s", (event_id,)).fetchone()
    return row == (1,)
