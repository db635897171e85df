"""`shop replay products`: rebuild the catalog projection from its events and compare.

The events are the truth. The rebuild folds every product's events with the same `apply` that
maintains the live projection, into a scratch table, in one snapshot of the database, and lists
every row that differs. With `apply=True` it then swaps the rebuilt rows in, under a lock that
holds writers back for the few moments it takes.
"""

from __future__ import annotations

from typing import Any

import psycopg

from shop.db import products as db
from shop.db.connections import primary_options
from shop.domain.products import Event, Product, apply

_FIELDS = (
    "sku",
    "name",
    "description",
    "price_cents",
    "currency",
    "stock_available",
    "stock_reserved",
    "version",
    "created_at",
    "updated_at",
)


def _rebuild(conn: psycopg.Connection[Any]) -> int:
    conn.execute("CREATE TEMP TABLE products_replay (LIKE products INCLUDING DEFAULTS) ON COMMIT DROP")
    current: Product | None = None
    count = 0
    for stored in db.all_events(conn):
        if current is not None and current.id != stored.product_id:
            db.insert_product(conn, current, table="products_replay")
            count += 1
            current = None
        current = apply(
            current, Event(stored.type, stored.data), stored.product_id, stored.version, stored.occurred_at
        )
    if current is not None:
        db.insert_product(conn, current, table="products_replay")
        count += 1
    return count


def _differences(conn: psycopg.Connection[Any]) -> list[str]:
    columns = ", ".join(f"l.{f}, r.{f}" for f in _FIELDS)
    rows = conn.execute(
        f"""
        SELECT coalesce(l.id, r.id), l.id IS NOT NULL, r.id IS NOT NULL, {columns}
          FROM products l FULL JOIN products_replay r ON r.id = l.id
         WHERE l.id IS NULL OR r.id IS NULL OR (l.*) IS DISTINCT FROM (r.*)
         ORDER BY 1
        """
    ).fetchall()
    report = []
    for row in rows:
        product_id, in_live, in_events = row[0], row[1], row[2]
        if not in_events:
            report.append(f"product {product_id}: in the projection but has no events")
        elif not in_live:
            report.append(f"product {product_id}: in the events but missing from the projection")
        else:
            values = row[3:]
            changed = [
                f"{name} {values[2 * i]!r} (projection) != {values[2 * i + 1]!r} (events)"
                for i, name in enumerate(_FIELDS)
                if values[2 * i] != values[2 * i + 1]
            ]
            report.append(f"product {product_id}: " + "; ".join(changed))
    return report


def _replace_projection(conn: psycopg.Connection[Any]) -> None:
    """Row by row rather than delete-all: other tables (stock reservations) reference products."""
    columns = ", ".join(_FIELDS)
    values = ", ".join(f"r.{f}" for f in _FIELDS)
    conn.execute(
        f"""
        UPDATE products p SET ({columns}) = ({values})
          FROM products_replay r
         WHERE r.id = p.id AND (p.*) IS DISTINCT FROM (r.*)
        """
    )
    conn.execute(
        "INSERT INTO products SELECT r.* FROM products_replay r"
        " WHERE NOT EXISTS (SELECT 1 FROM products p WHERE p.id = r.id)"
    )
    conn.execute(
        "DELETE FROM products p WHERE NOT EXISTS (SELECT 1 FROM products_replay r WHERE r.id = p.id)"
    )


def replay_products(url: str, apply_changes: bool) -> tuple[int, list[str]]:
    """(products rebuilt, differences). Applies the rebuild when asked and there are differences."""
    with psycopg.connect(url, **primary_options(url)) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with conn.transaction():
            if apply_changes:
                # Taken before the snapshot: no write can slip between the rebuild and the swap.
                conn.execute("LOCK TABLE products IN EXCLUSIVE MODE")
            count = _rebuild(conn)
            differences = _differences(conn)
            if apply_changes and differences:
                _replace_projection(conn)
    return count, differences
