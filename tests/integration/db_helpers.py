"""Small helpers for tests on the real databases: a pool on a context's primary, the wall clock, a
product the orders context can price, what the relay left unpublished."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import psycopg
from psycopg_pool import ConnectionPool

from shop.settings import Settings


def now() -> datetime:
    """The wall clock, as the processes hand it to the handlers."""
    return datetime.now(UTC)


@contextmanager
def primary_pool(settings: Settings, database: str, max_size: int = 4) -> Iterator[ConnectionPool]:
    with ConnectionPool(settings.databases[database].primary_url, min_size=1, max_size=max_size) as pool:
        yield pool


def priced_product(pool: ConnectionPool, name: str, sku_prefix: str) -> uuid.UUID:
    """A product of 450 EUR cents in the orders database's price list, as the price feed writes it."""
    product_id = uuid.uuid4()
    with pool.connection() as conn:
        conn.execute(
            "INSERT INTO product_prices (product_id, sku, name, price_cents, currency, version)"
            " VALUES (%s, %s, %s, 450, 'EUR', 1)",
            (product_id, f"{sku_prefix}-{product_id.hex[:8]}", name),
        )
    return product_id


def unpublished(url: str, topic: str) -> int:
    """How many outbox rows of `topic` (a scratch topic of the test's) the relay has not published."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM outbox WHERE topic = %s AND published_at IS NULL", (topic,)
        ).fetchone()
    assert row is not None
    return int(row[0])
