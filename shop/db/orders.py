"""SQL of the orders context."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from opentelemetry.trace import get_current_span
from psycopg.rows import class_row

from shop.db.connections import Conn
from shop.domain.orders import CancelReason, Order, Price, PricedLine, Status, Stock
from shop.observability.tracing import trace_id_of

AsyncConn = psycopg.AsyncConnection[Any]

# NOTIFY channel on which an order's stock outcome is announced (payload: the order id) once it is
# committed: a gateway holding a request that waits for it (`Prefer: wait`) answers at once.
STOCK_SETTLED_CHANNEL = "order_stock"

_ORDER_COLUMNS = ", ".join(
    (
        "id",
        "user_id",
        "status",
        "stock",
        "cancel_reason",
        "total_cents",
        "currency",
        "created_at",
        "updated_at",
        "paid_at",
        "expires_at",
    )
)


@dataclass(frozen=True)
class OrderRow:
    id: UUID
    user_id: UUID
    status: str
    stock: str
    cancel_reason: str | None
    total_cents: int
    currency: str
    created_at: datetime
    updated_at: datetime
    paid_at: datetime | None
    expires_at: datetime


@dataclass(frozen=True)
class LineRow:
    order_id: UUID
    product_id: UUID
    quantity: int
    unit_price_cents: int


@dataclass(frozen=True)
class IdempotencyRow:
    request_hash: str
    order_id: UUID


def idempotency_record(conn: Conn, user_id: UUID, key: str) -> IdempotencyRow | None:
    with conn.cursor(row_factory=class_row(IdempotencyRow)) as cur:
        cur.execute(
            "SELECT request_hash, order_id FROM idempotency_records WHERE user_id = %s AND key = %s",
            (user_id, key),
        )
        return cur.fetchone()


def prices_of(conn: Conn, product_ids: Sequence[UUID]) -> dict[UUID, Price]:
    rows = conn.execute(
        "SELECT product_id, price_cents, currency FROM product_prices WHERE product_id = ANY(%s)",
        (list(product_ids),),
    ).fetchall()
    return {row[0]: Price(row[1], row[2]) for row in rows}


def insert_order(
    conn: Conn,
    order_id: UUID,
    user_id: UUID,
    lines: Sequence[PricedLine],
    total_cents: int,
    currency: str,
    now: datetime,
    expires_at: datetime,
    customer_email: str | None = None,
) -> None:
    # The placement runs inside the request's trace (the place-order actor's span): the order keeps
    # its id so that an admin can find the order's journey in the trace store.
    trace_id = trace_id_of(get_current_span())
    conn.execute(
        """
        INSERT INTO orders
               (id, user_id, total_cents, currency, created_at, updated_at, expires_at, customer_email,
                trace_id)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
        """,
        (order_id, user_id, total_cents, currency, now, now, expires_at, customer_email, trace_id),
    )
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO order_lines (order_id, product_id, quantity, unit_price_cents)"
            " VALUES (%s, %s, %s, %s)",
            [(order_id, line.product_id, line.quantity, line.unit_price_cents) for line in lines],
        )


def insert_idempotency_record(
    conn: Conn, user_id: UUID, key: str, request_hash: str, order_id: UUID, placement_id: UUID | None
) -> None:
    conn.execute(
        "INSERT INTO idempotency_records (user_id, key, request_hash, order_id, placement_id)"
        " VALUES (%s, %s, %s, %s, %s)",
        (user_id, key, request_hash, order_id, placement_id),
    )


def record_refusal(
    conn: Conn, placement_id: UUID, user_id: UUID, code: str, message: str, now: datetime
) -> None:
    """The placement's latest refusal (what following it answers until an order exists)."""
    conn.execute(
        """
        INSERT INTO placement_refusals (placement_id, user_id, code, message, refused_at)
        VALUES (%s, %s, %s, %s, %s)
        ON CONFLICT (placement_id) DO UPDATE
           SET code = excluded.code, message = excluded.message, refused_at = excluded.refused_at
        """,
        (placement_id, user_id, code, message, now),
    )


@dataclass(frozen=True)
class PlacementOutcome:
    order_id: UUID | None  # the order, once one exists
    refusal_code: str | None  # else the latest refusal, if any
    refusal_message: str | None


async def placement_outcome(conn: AsyncConn, placement_id: UUID, user_id: UUID) -> PlacementOutcome | None:
    """What became of a placement: its order, else its latest refusal; None while neither exists."""
    cur = await conn.execute(
        """
        SELECT (SELECT order_id FROM idempotency_records WHERE placement_id = %s AND user_id = %s),
               r.code, r.message
          FROM (SELECT 1) AS one
          LEFT JOIN placement_refusals r ON r.placement_id = %s AND r.user_id = %s
        """,
        (placement_id, user_id, placement_id, user_id),
    )
    row = await cur.fetchone()
    if row is None or (row[0] is None and row[1] is None):
        return None
    return PlacementOutcome(row[0], row[1], row[2])


def lock_customer(conn: Conn, user_id: UUID) -> None:
    """Serialises one customer's placements until the transaction ends: the unpaid limits hold
    under concurrent orders. (Two customers rarely share a lock: 64-bit hashes.)"""
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s::text, 0))", (user_id,))


def unpaid_of(conn: Conn, user_id: UUID) -> tuple[int, int]:
    """(PENDING orders, units in them) of one customer."""
    row = conn.execute(
        """
        SELECT count(DISTINCT o.id), coalesce(sum(l.quantity), 0)
          FROM orders o JOIN order_lines l ON l.order_id = o.id
         WHERE o.user_id = %s AND o.status = 'PENDING'
        """,
        (user_id,),
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def order(conn: Conn, order_id: UUID) -> tuple[OrderRow, list[LineRow]] | None:
    with conn.cursor(row_factory=class_row(OrderRow)) as cur:
        cur.execute(f"SELECT {_ORDER_COLUMNS} FROM orders WHERE id = %s", (order_id,))
        row = cur.fetchone()
    if row is None:
        return None
    with conn.cursor(row_factory=class_row(LineRow)) as cur:
        cur.execute(
            "SELECT order_id, product_id, quantity, unit_price_cents FROM order_lines WHERE order_id = %s"
            " ORDER BY product_id",
            (order_id,),
        )
        return row, cur.fetchall()


async def order_async(conn: AsyncConn, order_id: UUID) -> tuple[OrderRow, list[LineRow]] | None:
    async with conn.cursor(row_factory=class_row(OrderRow)) as cur:
        await cur.execute(f"SELECT {_ORDER_COLUMNS} FROM orders WHERE id = %s", (order_id,))
        row = await cur.fetchone()
    if row is None:
        return None
    return row, await _lines_async(conn, [order_id])


async def _lines_async(conn: AsyncConn, order_ids: Sequence[UUID]) -> list[LineRow]:
    async with conn.cursor(row_factory=class_row(LineRow)) as cur:
        await cur.execute(
            "SELECT order_id, product_id, quantity, unit_price_cents FROM order_lines"
            " WHERE order_id = ANY(%s)"
            " ORDER BY order_id, product_id",
            (list(order_ids),),
        )
        return await cur.fetchall()


async def orders_of(
    conn: AsyncConn, user_id: UUID, before: UUID | None, limit: int
) -> list[tuple[OrderRow, list[LineRow]]]:
    """A user's orders, newest first (ids are UUIDv7); `before` is the previous page's last id."""
    async with conn.cursor(row_factory=class_row(OrderRow)) as cur:
        if before is None:
            await cur.execute(
                f"SELECT {_ORDER_COLUMNS} FROM orders WHERE user_id = %s ORDER BY id DESC LIMIT %s",
                (user_id, limit),
            )
        else:
            await cur.execute(
                f"SELECT {_ORDER_COLUMNS} FROM orders"
                " WHERE user_id = %s AND id < %s ORDER BY id DESC LIMIT %s",
                (user_id, before, limit),
            )
        rows = await cur.fetchall()
    lines = await _lines_async(conn, [r.id for r in rows])
    by_order: dict[UUID, list[LineRow]] = {}
    for line in lines:
        by_order.setdefault(line.order_id, []).append(line)
    return [(row, by_order.get(row.id, [])) for row in rows]


@dataclass(frozen=True)
class OrderTrace:
    """What an admin's view of an order's journey starts from."""

    order_id: UUID
    created_at: datetime
    trace_id: str | None  # None: placed while tracing was off


@dataclass(frozen=True)
class OutboxEvent:
    """An event the order caused, as one database's outbox holds it (until the retention deletes it)."""

    topic: str
    created_at: datetime
    published_at: datetime | None


async def order_trace(conn: AsyncConn, order_id: UUID) -> OrderTrace | None:
    async with conn.cursor(row_factory=class_row(OrderTrace)) as cur:
        await cur.execute(
            "SELECT id AS order_id, created_at, trace_id FROM orders WHERE id = %s", (order_id,)
        )
        return await cur.fetchone()


async def order_events(conn: AsyncConn, order_id: UUID) -> list[OutboxEvent]:
    """The Kafka events of an order in the outbox of `conn`'s database, oldest first: the orders'
    and the catalog's (the inventory's answers) both key an order's events by its id. Not
    indexed by key: an admin's occasional read scans at most the retention's rows
    (SHOP_OUTBOX_RETENTION), where an index would cost every write of the outbox."""
    async with conn.cursor(row_factory=class_row(OutboxEvent)) as cur:
        await cur.execute(
            "SELECT topic, created_at, published_at FROM outbox"
            " WHERE message_key = %s AND destination = 'kafka' ORDER BY id",
            (str(order_id),),
        )
        return await cur.fetchall()


# --- an order locked for a change (paying, cancelling, the stock outcome, its timers) -----------

# The columns of `LockedOrder`, read by the timers' joins too (alias `o`).
LOCKED_COLUMNS = (
    "o.id, o.user_id, o.status, o.stock, o.expires_at, o.cancel_reason, o.payment_reference, o.paid_at,"
    " o.customer_email, o.total_cents, o.currency"
)


@dataclass(frozen=True)
class LockedOrder:
    """An order locked until the transaction ends: its state, for the rules, and what its emails say."""

    state: Order
    customer_email: str | None
    total_cents: int
    currency: str

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> LockedOrder:
        """From the `LOCKED_COLUMNS` of a row."""
        order_id, user_id, status, stock, expires_at, reason, reference, paid_at, email, total, currency = row
        state = Order(
            order_id,
            user_id,
            Status(status),
            Stock(stock),
            expires_at,
            CancelReason(reason) if reason is not None else None,
            reference,
            paid_at,
        )
        return cls(state, email, total, currency)


def lock_order(conn: Conn, order_id: UUID) -> LockedOrder | None:
    row = conn.execute(
        f"SELECT {LOCKED_COLUMNS} FROM orders o WHERE o.id = %s FOR UPDATE", (order_id,)
    ).fetchone()
    return LockedOrder.from_row(row) if row is not None else None


def update_order(conn: Conn, order: Order, now: datetime) -> None:
    """Writes what the order's events change (shop.domain.orders.apply), on an order the caller locked."""
    conn.execute(
        """
        UPDATE orders SET status = %s, stock = %s, cancel_reason = %s, payment_reference = %s,
               paid_at = %s, updated_at = %s
         WHERE id = %s
        """,
        (
            order.status,
            order.stock,
            order.cancel_reason,
            order.payment_reference,
            order.paid_at,
            now,
            order.id,
        ),
    )


def lock_orders(conn: Conn, order_ids: list[UUID]) -> None:
    """The orders' rows, locked in id order before a batch's handlers change them one by one: two
    batches (or a batch and a command on one order) then never wait on each other in a circle."""
    conn.execute(
        "SELECT id FROM orders WHERE id = ANY(%s) ORDER BY id FOR UPDATE", (sorted(set(order_ids)),)
    ).fetchall()


async def listen_for_stock_outcomes(conn: AsyncConn) -> None:
    """Subscribes `conn` (autocommit) to the stock outcomes announced on `STOCK_SETTLED_CHANNEL`."""
    await conn.execute(f"LISTEN {STOCK_SETTLED_CHANNEL}")
