"""SQL of the catalog: the event stream, the projection, and the queries the gateway serves."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import class_row

from shop.db.connections import Conn
from shop.domain.products import DuplicateSku, Product

# A product's columns but its id, in the order of `Product`'s fields.
FIELDS = (
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
_COLUMNS = ", ".join(("id", *FIELDS))

AsyncConn = psycopg.AsyncConnection[Any]


@dataclass(frozen=True)
class StoredEvent:
    seq: int
    event_id: UUID
    product_id: UUID
    version: int
    type: str
    data: dict[str, Any]
    occurred_at: datetime


def product_for_update(conn: Conn, product_id: UUID) -> Product | None:
    with conn.cursor(row_factory=class_row(Product)) as cur:
        cur.execute(f"SELECT {_COLUMNS} FROM products WHERE id = %s FOR UPDATE", (product_id,))
        return cur.fetchone()


def sku_taken(conn: Conn, sku: str) -> bool:
    return conn.execute("SELECT 1 FROM products WHERE sku = %s", (sku,)).fetchone() is not None


def append_event(
    conn: Conn, event_id: UUID, product_id: UUID, version: int, type_: str, data: dict[str, Any], at: datetime
) -> int:
    """Appends one event; the (product_id, version) key refuses a second writer of the same version."""
    row = conn.execute(
        """
        INSERT INTO product_events (event_id, product_id, version, type, data, occurred_at)
        VALUES (%s, %s, %s, %s, %s, %s) RETURNING seq
        """,
        (event_id, product_id, version, type_, json.dumps(data), at),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _values(p: Product) -> tuple[Any, ...]:
    return (
        p.id,
        p.sku,
        p.name,
        p.description,
        p.price_cents,
        p.currency,
        p.stock_available,
        p.stock_reserved,
        p.version,
        p.created_at,
        p.updated_at,
    )


def insert_product(conn: Conn, product: Product, table: str = "products") -> None:
    try:
        # RETURNING: reading the answer makes a duplicate sku raise here, even in pipeline mode.
        conn.execute(
            f"INSERT INTO {table} ({_COLUMNS})"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            _values(product),
        ).fetchone()
    except psycopg.errors.UniqueViolation as exc:
        if exc.diag.constraint_name and "sku" in exc.diag.constraint_name:
            raise DuplicateSku(f"a product with sku {product.sku!r} exists") from None
        raise


def update_product(conn: Conn, product: Product) -> None:
    conn.execute(
        """
        UPDATE products SET sku = %s, name = %s, description = %s, price_cents = %s, currency = %s,
               stock_available = %s, stock_reserved = %s, version = %s, updated_at = %s
         WHERE id = %s
        """,
        (
            product.sku,
            product.name,
            product.description,
            product.price_cents,
            product.currency,
            product.stock_available,
            product.stock_reserved,
            product.version,
            product.updated_at,
            product.id,
        ),
    )


def all_events(conn: Conn) -> Iterator[StoredEvent]:
    """Every event, each product's in version order (what a rebuild folds)."""
    with conn.cursor(name="replay", row_factory=class_row(StoredEvent)) as cur:
        cur.execute(
            "SELECT seq, event_id, product_id, version, type, data, occurred_at FROM product_events"
            " ORDER BY product_id, version"
        )
        yield from cur


def lock_order(conn: Conn, order_id: UUID) -> None:
    """Serialises the inventory's handling of one order until the transaction ends: its reservation
    and its cancellation (or sale) never interleave. Taken before any product lock, by every handler
    (a batch of records in one transaction takes all its orders' first: `lock_orders`)."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s::text, 0))", (order_id,))


def lock_orders(conn: Conn, order_ids: list[UUID]) -> None:
    """A batch's orders, each as `lock_order`, in order id order, before any product lock."""
    for order_id in sorted(set(order_ids)):
        lock_order(conn, order_id)


def lock_products(conn: Conn, product_ids: list[UUID]) -> None:
    """A batch's products, locked in id order before its handlers run. Every transaction of the
    inventory takes its locks in this order: orders' (by id), then products' (by id), as a single
    record's handler does for its one order, so two batches, or a batch and a single record, never
    wait on each other in a circle (without it, lanes reserving for orders of the same products
    deadlocked)."""
    conn.execute(
        "SELECT id FROM products WHERE id = ANY(%s) ORDER BY id FOR UPDATE", (sorted(set(product_ids)),)
    ).fetchall()


def products_reserved_by(conn: Conn, order_ids: list[UUID]) -> list[UUID]:
    """The products the orders hold (or held) stock of."""
    rows = conn.execute(
        "SELECT DISTINCT product_id FROM stock_reservations WHERE order_id = ANY(%s)", (order_ids,)
    ).fetchall()
    return [row[0] for row in rows]


def reserved_or_cancelled(conn: Conn, order_id: UUID) -> tuple[bool, bool]:
    """Whether the order holds reservations already, and whether its cancellation came first
    (one round trip for both)."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM stock_reservations WHERE order_id = %s),"
        " EXISTS (SELECT 1 FROM cancelled_orders WHERE order_id = %s)",
        (order_id, order_id),
    ).fetchone()
    assert row is not None
    return bool(row[0]), bool(row[1])


def insert_reservation(conn: Conn, order_id: UUID, product_id: UUID, quantity: int) -> None:
    conn.execute(
        "INSERT INTO stock_reservations (order_id, product_id, quantity) VALUES (%s, %s, %s)",
        (order_id, product_id, quantity),
    )


def held_reservations(conn: Conn, order_id: UUID) -> list[tuple[UUID, int]]:
    """(product, quantity) of the order's lines still `reserved`, locked, in product id order."""
    rows = conn.execute(
        """
        SELECT product_id, quantity FROM stock_reservations
         WHERE order_id = %s AND state = 'reserved' ORDER BY product_id FOR UPDATE
        """,
        (order_id,),
    ).fetchall()
    return [(row[0], row[1]) for row in rows]


def set_reservation_state(conn: Conn, order_id: UUID, product_id: UUID, state: str, now: datetime) -> None:
    conn.execute(
        "UPDATE stock_reservations SET state = %s, updated_at = %s WHERE order_id = %s AND product_id = %s",
        (state, now, order_id, product_id),
    )


def remember_cancelled(conn: Conn, order_id: UUID) -> None:
    """The order's cancellation, for an order.created that comes after it."""
    conn.execute("INSERT INTO cancelled_orders (order_id) VALUES (%s) ON CONFLICT DO NOTHING", (order_id,))


def ever_held(conn: Conn, order_id: UUID) -> bool:
    """Whether the order holds or held stock here, in whatever state."""
    row = conn.execute("SELECT 1 FROM stock_reservations WHERE order_id = %s LIMIT 1", (order_id,))
    return row.fetchone() is not None


def reservations_of_ended_orders(conn: Conn) -> list[tuple[Any, ...]]:
    """(order, product, quantity) of every reservation still held by an order the inventory knows
    was cancelled: stock nobody can buy, for good. None when the books are right."""
    return conn.execute(
        """
        SELECT r.order_id, r.product_id, r.quantity
          FROM stock_reservations r JOIN cancelled_orders c ON c.order_id = r.order_id
         WHERE r.state = 'reserved'
        """
    ).fetchall()


def stock_that_does_not_add_up(conn: Conn) -> list[tuple[Any, ...]]:
    """The catalog's stock invariant, checked from the event history: per product, supplied (initial
    stock + restocks and write-offs) = available + reserved + sold, nothing below zero, and the
    reserved count equal to the units the reservations hold. Rows of (sku, supplied, available,
    reserved, sold, held) for every product where that fails; none when the books balance."""
    return conn.execute(_STOCK_DOES_NOT_ADD_UP).fetchall()


_STOCK_DOES_NOT_ADD_UP = """
WITH flows AS (
    SELECT product_id,
           sum(CASE type WHEN 'ProductCreated' THEN (data->>'stock')::int
                         WHEN 'StockAdjusted' THEN (data->>'delta')::int ELSE 0 END) AS supplied,
           sum(CASE type WHEN 'StockSold' THEN (data->>'quantity')::int ELSE 0 END) AS sold
      FROM product_events GROUP BY product_id
), held AS (
    SELECT product_id, sum(quantity) AS reserved FROM stock_reservations
     WHERE state = 'reserved' GROUP BY product_id
)
SELECT p.sku, f.supplied, p.stock_available, p.stock_reserved, f.sold, coalesce(h.reserved, 0)
  FROM products p JOIN flows f ON f.product_id = p.id LEFT JOIN held h ON h.product_id = p.id
 WHERE f.supplied <> p.stock_available + p.stock_reserved + f.sold
    OR p.stock_available < 0 OR p.stock_reserved < 0
    OR p.stock_reserved <> coalesce(h.reserved, 0)
"""


# --- queries (gateway, async) ------------------------------------------------------------------


async def get_product(conn: AsyncConn, product_id: UUID) -> Product | None:
    async with conn.cursor(row_factory=class_row(Product)) as cur:
        await cur.execute(f"SELECT {_COLUMNS} FROM products WHERE id = %s", (product_id,))
        return await cur.fetchone()


async def list_products(conn: AsyncConn, after: UUID | None, limit: int) -> list[Product]:
    """A page in id order (ids are UUIDv7, so: creation order); `after` is the previous page's last id."""
    async with conn.cursor(row_factory=class_row(Product)) as cur:
        if after is None:
            await cur.execute(f"SELECT {_COLUMNS} FROM products ORDER BY id LIMIT %s", (limit,))
        else:
            await cur.execute(
                f"SELECT {_COLUMNS} FROM products WHERE id > %s ORDER BY id LIMIT %s", (after, limit)
            )
        return await cur.fetchall()


async def events_of(conn: AsyncConn, product_id: UUID) -> list[StoredEvent]:
    async with conn.cursor(row_factory=class_row(StoredEvent)) as cur:
        await cur.execute(
            "SELECT seq, event_id, product_id, version, type, data, occurred_at FROM product_events"
            " WHERE product_id = %s ORDER BY version",
            (product_id,),
        )
        return await cur.fetchall()
