"""SQL of order timers (orders database): record them, lock one, claim overdue ones, mark them fired."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg.rows import class_row

from shop.db.connections import Conn
from shop.db.orders import LOCKED_COLUMNS, LockedOrder
from shop.domain.timers import EXPIRY, Timer

# A timer whose sweep failed this often is left alone (and counted): a bug to look at, not a retry loop.
MAX_SWEEP_FAILURES = 5


@dataclass(frozen=True)
class TimerRow:
    order_id: UUID
    kind: str
    due_at: datetime
    fired_at: datetime | None


@dataclass(frozen=True)
class ReminderLine:
    name: str
    quantity: int
    unit_price_cents: int


def insert_timers(conn: Conn, order_id: UUID, timers: Sequence[Timer]) -> None:
    """One statement for all of them (executemany sent one per timer: the placement's costliest)."""
    conn.execute(
        "INSERT INTO order_timers (order_id, kind, due_at)"
        " SELECT %s, kind, due_at FROM unnest(%s::text[], %s::timestamptz[]) AS t(kind, due_at)",
        (order_id, [t.kind for t in timers], [t.due_at for t in timers]),
    )


def lock_timer_and_order(conn: Conn, order_id: UUID, kind: str) -> tuple[TimerRow, LockedOrder] | None:
    """The timer and its order, locked until the transaction ends (so a trigger and the sweeper never
    both fire it), in one round trip: the trigger path is the hot one."""
    row = conn.execute(
        f"""
        SELECT t.order_id, t.kind, t.due_at, t.fired_at, {LOCKED_COLUMNS}
          FROM order_timers t JOIN orders o ON o.id = t.order_id
         WHERE t.order_id = %s AND t.kind = %s
           FOR UPDATE
        """,
        (order_id, kind),
    ).fetchone()
    return _timer_and_order(row) if row is not None else None


def _timer_and_order(row: Sequence[Any]) -> tuple[TimerRow, LockedOrder]:
    return TimerRow(*row[:4]), LockedOrder.from_row(row[4:])


def timer_fired(conn: Conn, order_id: UUID, kind: str) -> bool | None:
    """Whether the timer fired already (None: no such timer), without locking anything: a trigger
    whose timer was fired along with another's (`claim_due`) costs a read, not a write."""
    row = conn.execute(
        "SELECT fired_at IS NOT NULL FROM order_timers WHERE order_id = %s AND kind = %s", (order_id, kind)
    ).fetchone()
    return None if row is None else bool(row[0])


def claim_due(conn: Conn, due_by: datetime, limit: int) -> list[tuple[TimerRow, LockedOrder]]:
    """Up to `limit` unfired timers due by `due_by`, oldest first, each locked with its order. A
    timer or order another transaction holds is skipped, never waited for: whoever holds it fires
    it, or its own trigger or the sweeper will, and a batch that waited could deadlock with a
    trigger that holds an order and waits for its timer."""
    rows = conn.execute(
        f"""
        SELECT t.order_id, t.kind, t.due_at, t.fired_at, {LOCKED_COLUMNS}
          FROM order_timers t JOIN orders o ON o.id = t.order_id
         WHERE t.fired_at IS NULL AND t.due_at <= %s AND t.sweep_failures < %s
         ORDER BY t.due_at
         LIMIT %s
           FOR UPDATE SKIP LOCKED
        """,
        (due_by, MAX_SWEEP_FAILURES, limit),
    ).fetchall()
    return [_timer_and_order(row) for row in rows]


def claim_overdue(conn: Conn, due_before: datetime) -> TimerRow | None:
    """The oldest unfired timer due before `due_before`, locked; rows another sweeper holds are skipped."""
    with conn.cursor(row_factory=class_row(TimerRow)) as cur:
        cur.execute(
            """
            SELECT order_id, kind, due_at, fired_at FROM order_timers
             WHERE fired_at IS NULL AND due_at < %s AND sweep_failures < %s
             ORDER BY due_at
             LIMIT 1
               FOR UPDATE SKIP LOCKED
            """,
            (due_before, MAX_SWEEP_FAILURES),
        )
        return cur.fetchone()


def record_sweep_failure(conn: Conn, order_id: UUID, kind: str, error: str) -> int:
    row = conn.execute(
        """
        UPDATE order_timers SET sweep_failures = sweep_failures + 1, last_error = %s
         WHERE order_id = %s AND kind = %s
        RETURNING sweep_failures
        """,
        (error[:2000], order_id, kind),
    ).fetchone()
    return int(row[0]) if row else 0


def mark_fired(conn: Conn, order_id: UUID, kind: str, now: datetime, fired_by: str, outcome: str) -> None:
    conn.execute(
        "UPDATE order_timers SET fired_at = %s, fired_by = %s, outcome = %s"
        " WHERE order_id = %s AND kind = %s",
        (now, fired_by, outcome, order_id, kind),
    )


def next_reminder(conn: Conn, order_id: UUID, after: datetime) -> TimerRow | None:
    """The order's reminder timer that falls due next after `after` (fired or not)."""
    with conn.cursor(row_factory=class_row(TimerRow)) as cur:
        cur.execute(
            "SELECT order_id, kind, due_at, fired_at FROM order_timers"
            " WHERE order_id = %s AND kind <> %s AND due_at > %s ORDER BY due_at LIMIT 1",
            (order_id, EXPIRY, after),
        )
        return cur.fetchone()


def reminder_lines(conn: Conn, order_id: UUID) -> list[ReminderLine]:
    """The order's lines with the product names the order side knows (the id where it knows none)."""
    with conn.cursor(row_factory=class_row(ReminderLine)) as cur:
        cur.execute(
            """
            SELECT coalesce(p.name, l.product_id::text) AS name, l.quantity, l.unit_price_cents
              FROM order_lines l LEFT JOIN product_prices p USING (product_id)
             WHERE l.order_id = %s
             ORDER BY name, l.product_id
            """,
            (order_id,),
        )
        return cur.fetchall()


def pending_by_kind(conn: Conn, overdue_before: datetime) -> dict[str, tuple[int, int]]:
    """{kind: (timers not fired yet, of which due before `overdue_before`)}, over the partial index
    `order_timers_pending`; every kind of the schedule is reported, 0 when none."""
    rows = conn.execute(
        """
        SELECT kind, count(*), count(*) FILTER (WHERE due_at < %s)
          FROM order_timers WHERE fired_at IS NULL GROUP BY kind
        """,
        (overdue_before,),
    ).fetchall()
    return {kind: (int(pending), int(overdue)) for kind, pending, overdue in rows}
