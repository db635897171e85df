"""The price feed against the real Kafka and orders database: prices follow the newest product
version, duplicates and replays change nothing, poison is dead-lettered and the agent carries on."""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from datetime import UTC, datetime

import pytest
from confluent_kafka import Producer
from psycopg_pool import ConnectionPool

from shop.db import price_feed as db
from shop.db.unit_of_work import UnitOfWork
from shop.handlers.price_feed import CONSUMER, handle_product_event
from shop.schemas.events import (
    PRODUCT_CREATED,
    PRODUCT_UPDATED,
    ProductEventV1,
    ProductSnapshot,
    encode_product_event,
)
from shop.streams.price_feed import price_feed_agent_for
from shop.streams.runner import StreamRunner
from tests.integration.kafka_helpers import consume, headers_of, scratch_topic


@pytest.fixture
def orders_pool(settings):
    with ConnectionPool(settings.databases["orders"].primary_url, min_size=1, max_size=4) as pool:
        yield pool


def _body(product_id: uuid.UUID, version: int, price_cents: int, event_id: uuid.UUID | None = None) -> dict:
    created = version == 1
    return encode_product_event(
        schema=PRODUCT_CREATED if created else PRODUCT_UPDATED,
        event_id=event_id or uuid.uuid4(),
        occurred_at=datetime.now(UTC),
        product_id=product_id,
        version=version,
        type="ProductCreated" if created else "ProductUpdated",
        snapshot={
            "sku": f"SKU-{product_id.hex[:8]}",
            "name": f"tea v{version}",
            "description": "",
            "price_cents": price_cents,
            "currency": "EUR",
            "stock_available": 5,
            "stock_reserved": 0,
        },
    )


def _event(product_id: uuid.UUID, version: int, price_cents: int, event_id: uuid.UUID | None = None):
    body = _body(product_id, version, price_cents, event_id)
    return ProductEventV1(
        schema=body["schema"],
        schema_version=body["schema_version"],
        event_id=uuid.UUID(body["event_id"]),
        occurred_at=datetime.fromisoformat(body["occurred_at"]),
        product_id=product_id,
        version=version,
        type=body["type"],
        data=ProductSnapshot(**body["data"]),
    )


def _price(pool: ConnectionPool, product_id: uuid.UUID) -> db.ProductPriceRow | None:
    with pool.connection() as conn:
        return db.product_price(conn, product_id)


def _in_inbox(pool: ConnectionPool, event_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT event_id FROM inbox WHERE consumer = %s AND event_id = ANY(%s)", (CONSUMER, event_ids)
        ).fetchall()
    return {row[0] for row in rows}


def test_handler_keeps_the_newest_version_and_handles_each_event_once(orders_pool):
    product_id = uuid.uuid4()
    created = _event(product_id, 1, 1000)

    assert handle_product_event(created, UnitOfWork(orders_pool)) is True
    row = _price(orders_pool, product_id)
    assert row is not None
    assert (row.version, row.price_cents, row.currency, row.sku) == (1, 1000, "EUR", created.data.sku)

    assert handle_product_event(created, UnitOfWork(orders_pool)) is False  # a redelivery
    assert handle_product_event(_event(product_id, 3, 1300), UnitOfWork(orders_pool)) is True
    # Version 2 arrives after 3 (another topic, a replay): recorded as handled, price untouched.
    late = _event(product_id, 2, 1200)
    assert handle_product_event(late, UnitOfWork(orders_pool)) is True
    # A known event id does nothing at all, even claiming a newer version.
    assert handle_product_event(_event(product_id, 9, 9900, late.event_id), UnitOfWork(orders_pool)) is False

    row = _price(orders_pool, product_id)
    assert row is not None
    assert (row.version, row.price_cents, row.name) == (3, 1300, "tea v3")
    assert _in_inbox(orders_pool, [created.event_id, late.event_id]) == {created.event_id, late.event_id}
    # Another consumer has its own inbox: the same event is new to it.
    assert handle_product_event(created, UnitOfWork(orders_pool), consumer="price-feed-test") is True


def test_a_stock_only_event_costs_the_order_side_nothing(orders_pool):
    product_id = uuid.uuid4()
    assert handle_product_event(_event(product_id, 1, 1000), UnitOfWork(orders_pool)) is True
    body = _body(product_id, 2, 1000)
    reserved = _event(product_id, 2, 1000)
    reserved = dataclasses.replace(
        reserved, type="StockReserved", data=ProductSnapshot(**{**body["data"], "stock_reserved": 1})
    )
    uow = UnitOfWork(orders_pool)
    assert handle_product_event(reserved, uow) is True
    assert not uow.committed  # no transaction was opened
    assert _in_inbox(orders_pool, [reserved.event_id]) == set()
    row = _price(orders_pool, product_id)
    assert row is not None
    assert (row.version, row.price_cents) == (1, 1000)
    # The next change of the price still applies, its version being newer than the stored one.
    assert handle_product_event(_event(product_id, 3, 1250), UnitOfWork(orders_pool)) is True
    row = _price(orders_pool, product_id)
    assert row is not None
    assert (row.version, row.price_cents) == (3, 1250)


def _wait_for_inbox(pool: ConnectionPool, event_ids: list[uuid.UUID], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while _in_inbox(pool, event_ids) != set(event_ids) and time.monotonic() < deadline:
        time.sleep(0.1)


def _produce(bootstrap: str, records: list[tuple[str, uuid.UUID, bytes, str | None]]) -> None:
    """(topic, key, value, event_id header) in order, as the outbox relay would send them."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for topic, key, value, event_id in records:
        headers: dict[str, str | bytes | None] = {"traceparent": f"00-{'a' * 32}-{'b' * 16}-01"}
        if event_id is not None:
            headers["event_id"] = event_id
        producer.produce(topic, key=str(key).encode(), value=value, headers=headers)
    assert producer.flush(20) == 0


def test_agent_feeds_prices_dead_letters_poison_and_carries_on(settings, orders_pool):
    bootstrap = settings.kafka_bootstrap
    with (
        scratch_topic(bootstrap, partitions=3) as created_topic,
        scratch_topic(bootstrap, partitions=3) as updated_topic,
        scratch_topic(bootstrap, 1, "dlt") as dead_letter,
    ):
        product_id = uuid.uuid4()
        created = _body(product_id, 1, 1000)
        updated = _body(product_id, 2, 1250)
        future = _body(product_id, 1, 500) | {"schema_version": "2.0"}
        stale = _body(product_id, 1, 700)  # version 1 again, under a new event id
        encode = json.dumps
        agent = price_feed_agent_for(
            {created_topic: PRODUCT_CREATED, updated_topic: PRODUCT_UPDATED},
            unit_of_work=lambda: UnitOfWork(orders_pool),
        )
        runner = StreamRunner(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"test-{uuid.uuid4().hex[:8]}",
                "auto.offset.reset": "earliest",
            },
            {"bootstrap.servers": bootstrap},
            {created_topic: agent, updated_topic: agent},
            dead_letter_topic=dead_letter,
            max_backoff=0.2,
        )
        handled_ids = [uuid.UUID(b["event_id"]) for b in (created, updated, stale)]
        runner.start()
        try:
            # Created and updated travel on two topics, so either may be handled first; wait for
            # both, so that the stale event below surely arrives after version 2 is stored.
            _produce(
                bootstrap,
                [
                    (created_topic, product_id, encode(created).encode(), created["event_id"]),
                    (updated_topic, product_id, encode(updated).encode(), updated["event_id"]),
                ],
            )
            _wait_for_inbox(orders_pool, handled_ids[:2])
            # One key, so every record on the created topic shares a partition: the last two can
            # only be handled if the agent went past the two poison ones.
            _produce(
                bootstrap,
                [
                    (created_topic, product_id, b"\x00garbage", None),
                    (created_topic, product_id, encode(future).encode(), future["event_id"]),
                    (created_topic, product_id, encode(created).encode(), created["event_id"]),
                    (created_topic, product_id, encode(stale).encode(), stale["event_id"]),
                ],
            )
            _wait_for_inbox(orders_pool, handled_ids)
            assert runner.alive()
        finally:
            runner.stop()

        assert _in_inbox(orders_pool, handled_ids) == set(handled_ids)
        assert _in_inbox(orders_pool, [uuid.UUID(future["event_id"])]) == set()
        row = _price(orders_pool, product_id)
        assert row is not None
        assert (row.version, row.price_cents, row.name) == (2, 1250, "tea v2")

        dead = consume(bootstrap, dead_letter, 3, timeout=5)
        assert [m.value() for m in dead] == [b"\x00garbage", encode(future).encode()]
        garbage, unknown = (headers_of(m) for m in dead)
        assert b"not JSON" in garbage["x-dead-letter-reason"]
        assert b"schema_version 2.0 is not supported" in unknown["x-dead-letter-reason"]
        assert unknown["event_id"] == future["event_id"].encode()  # the original headers are kept
        for headers, offset in ((garbage, b"1"), (unknown, b"2")):
            assert headers["x-original-topic"] == created_topic.encode()
            assert headers["x-original-offset"] == offset
