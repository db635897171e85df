"""SQL of `shop replay products` (shop.handlers.replay): a scratch projection rebuilt from the
events, compared with the live one, and swapped in."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg

from shop.db.connections import Conn, primary_options
from shop.db.products import FIELDS

SCRATCH = "products_replay"


@contextmanager
def snapshot(url: str) -> Iterator[Conn]:
    """A connection to the catalog's primary, in one repeatable-read transaction: one snapshot."""
    with psycopg.connect(url, **primary_options(url)) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with conn.transaction():
            yield conn


def hold_writers_back(conn: Conn) -> None:
    """The transaction's first statement, so taken before its snapshot: no write can slip between
    the rebuild and the swap."""
    conn.execute("LOCK TABLE products IN EXCLUSIVE MODE")


def create_scratch(conn: Conn) -> None:
    """An empty copy of `products`, gone at the end of the transaction."""
    conn.execute(f"CREATE TEMP TABLE {SCRATCH} (LIKE products INCLUDING DEFAULTS) ON COMMIT DROP")


@dataclass(frozen=True)
class Difference:
    """A product whose live row and rebuilt row differ; `values` pairs each of `FIELDS`, the
    projection's first."""

    product_id: Any
    in_projection: bool
    in_events: bool
    values: tuple[Any, ...]

    def changed(self) -> list[tuple[str, Any, Any]]:
        """(field, projection's value, events' value) of every field that differs."""
        pairs = [(name, self.values[2 * i], self.values[2 * i + 1]) for i, name in enumerate(FIELDS)]
        return [pair for pair in pairs if pair[1] != pair[2]]


def differences(conn: Conn) -> list[Difference]:
    columns = ", ".join(f"l.{f}, r.{f}" for f in FIELDS)
    rows = conn.execute(
        f"""
        SELECT coalesce(l.id, r.id), l.id IS NOT NULL, r.id IS NOT NULL, {columns}
          FROM products l FULL JOIN {SCRATCH} r ON r.id = l.id
         WHERE l.id IS NULL OR r.id IS NULL OR (l.*) IS DISTINCT FROM (r.*)
         ORDER BY 1
        """
    ).fetchall()
    return [Difference(row[0], row[1], row[2], tuple(row[3:])) for row in rows]


def replace_projection(conn: Conn) -> None:
    """Row by row rather than delete-all: other tables (stock reservations) reference products."""
    columns = ", ".join(FIELDS)
    values = ", ".join(f"r.{f}" for f in FIELDS)
    conn.execute(
        f"""
        UPDATE products p SET ({columns}) = ({values})
          FROM {SCRATCH} r
         WHERE r.id = p.id AND (p.*) IS DISTINCT FROM (r.*)
        """
    )
    conn.execute(
        f"INSERT INTO products SELECT r.* FROM {SCRATCH} r"
        " WHERE NOT EXISTS (SELECT 1 FROM products p WHERE p.id = r.id)"
    )
    conn.execute(f"DELETE FROM products p WHERE NOT EXISTS (SELECT 1 FROM {SCRATCH} r WHERE r.id = p.id)")
