"""The catalog on the real `catalog` database and Kafka: events, projection, outbox, replay."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import psycopg
import pytest
from opentelemetry import context as otel_context
from opentelemetry import propagate

from shop.db.unit_of_work import UnitOfWork
from shop.domain.products import DuplicateSku, VersionConflict
from shop.handlers import products as catalog
from shop.relay import OutboxRelay
from tests.concurrency import run_together
from tests.integration.db_helpers import now
from tests.integration.kafka_helpers import consume, headers_of, value_of

DATABASE = "catalog"


def new_fields(**override):
    return {
        "sku": f"IT-{uuid.uuid4().hex[:10]}",
        "name": "Mug",
        "description": "",
        "price_cents": 999,
        "currency": "EUR",
        "stock": 5,
        **override,
    }


def test_each_change_is_an_event_the_projection_and_an_outbox_row_together(pool):
    # Written inside a trace (the actor's span, here a caller's context): the row carries it.
    caller = otel_context.attach(
        propagate.extract({"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"})
    )
    try:
        product = catalog.handle_create(catalog.CreateProduct(new_fields()), UnitOfWork(pool), now)
    finally:
        otel_context.detach(caller)
    product = catalog.handle_patch(
        catalog.PatchProduct(product.id, {"price_cents": 1099}, 1), UnitOfWork(pool), now
    )
    product = catalog.handle_adjust_stock(catalog.AdjustStock(product.id, -2), UnitOfWork(pool), now)
    with pool.connection() as conn:
        events = conn.execute(
            "SELECT version, type FROM product_events WHERE product_id = %s ORDER BY version", (product.id,)
        ).fetchall()
        outbox = conn.execute(
            "SELECT topic, message_key, payload, headers FROM outbox WHERE message_key = %s ORDER BY id",
            (str(product.id),),
        ).fetchall()
        live = conn.execute(
            "SELECT price_cents, stock_available, version FROM products WHERE id = %s", (product.id,)
        ).fetchone()
    assert events == [(1, "ProductCreated"), (2, "ProductUpdated"), (3, "StockAdjusted")]
    assert [row[0] for row in outbox] == ["product.created", "product.updated", "product.updated"]
    assert outbox[-1][2]["data"]["stock_available"] == 3
    assert outbox[0][3]["traceparent"].startswith("00-aaaa")
    assert live == (1099, 3, 3)


def test_a_duplicate_sku_leaves_nothing_behind(pool):
    fields = new_fields()
    catalog.handle_create(catalog.CreateProduct(fields), UnitOfWork(pool), now)
    with pytest.raises(DuplicateSku):
        catalog.handle_create(catalog.CreateProduct({**fields, "name": "Other"}), UnitOfWork(pool), now)
    with pool.connection() as conn:
        assert conn.execute("SELECT count(*) FROM products WHERE sku = %s", (fields["sku"],)).fetchone() == (
            1,
        )


def test_two_concurrent_patches_from_one_version_cannot_both_win(pool):
    product = catalog.handle_create(catalog.CreateProduct(new_fields()), UnitOfWork(pool), now)

    def patch(price: int) -> str:
        try:
            catalog.handle_patch(
                catalog.PatchProduct(product.id, {"price_cents": price}, 1), UnitOfWork(pool), now
            )
            return "ok"
        except VersionConflict:
            return "conflict"

    outcomes = run_together([lambda: patch(1), lambda: patch(2)])
    assert sorted(outcomes) == ["conflict", "ok"]


def test_the_event_stream_refuses_a_second_writer_of_a_version_and_any_rewrite(pool):
    product = catalog.handle_create(catalog.CreateProduct(new_fields()), UnitOfWork(pool), now)
    with pool.connection() as conn, pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute(
            "INSERT INTO product_events (event_id, product_id, version, type, data, occurred_at)"
            " VALUES (%s, %s, 1, 'ProductUpdated', '{}', now())",
            (uuid.uuid4(), product.id),
        )
    with pool.connection() as conn, pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        conn.execute("DELETE FROM product_events WHERE product_id = %s", (product.id,))


def test_product_events_reach_kafka_and_read_back_with_a_plain_consumer(settings, pool):
    product = catalog.handle_create(catalog.CreateProduct(new_fields()), UnitOfWork(pool), now)
    relay = OutboxRelay(
        {"catalog": settings.databases["catalog"].primary_url},
        {"bootstrap.servers": settings.kafka_bootstrap},
        poll_interval=0.2,
    )
    relay.start()
    try:
        deadline_messages = consume(settings.kafka_bootstrap, "product.created", 10_000, timeout=8)
    finally:
        relay.stop()
    mine = [m for m in deadline_messages if m.key() == str(product.id).encode()]
    assert len(mine) == 1
    value = json.loads(value_of(mine[0]))
    assert value["schema"] == "product.created"
    assert value["schema_version"] == "1.0"
    assert value["product_id"] == str(product.id)
    assert value["data"]["sku"] == product.sku
    assert headers_of(mine[0])["event_id"] == value["event_id"].encode()


def _replay(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shop", "replay", "products", *args], capture_output=True, text=True
    )


def test_replay_finds_a_corrupted_projection_and_apply_repairs_it(pool):
    product = catalog.handle_create(catalog.CreateProduct(new_fields()), UnitOfWork(pool), now)
    clean = _replay()
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "no difference" in clean.stdout
    with pool.connection() as conn:
        conn.execute("UPDATE products SET price_cents = 1 WHERE id = %s", (product.id,))
    found = _replay()
    assert found.returncode == 1
    assert f"product {product.id}: price_cents 1 (projection) != 999 (events)" in found.stdout
    assert _replay("--apply").returncode == 0
    assert _replay().returncode == 0
    with pool.connection() as conn:
        assert conn.execute("SELECT price_cents FROM products WHERE id = %s", (product.id,)).fetchone() == (
            999,
        )
