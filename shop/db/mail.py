"""SQL of the mail ledger: `mail_deliveries`, in each database emails come from (auth, orders).

One row per dedupe key. A delivery holds its row locked in an open transaction for the whole SMTP
exchange; the row is committed only with an outcome (sent_at or obsolete_at), so a committed row
always says what became of its email.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from shop.db.connections import Conn

# How long a delivery waits for another transaction's uncommitted insert of the same key. That one
# is sending the email and holds it for its whole SMTP exchange: waiting longer would only block a
# worker thread, so give up at once and retry later. (0 would mean "wait forever".)
_INSERT_WAIT = "100ms"


@dataclass(frozen=True)
class DeliveryRecord:
    sent_at: datetime | None
    obsolete_at: datetime | None
    handed_over_at: datetime | None = None


def lock_delivery(conn: Conn, dedupe_key: str, template: str) -> DeliveryRecord:
    """Lock the row of `dedupe_key` for this transaction, inserting it if missing; what it records.

    Raises `psycopg.errors.LockNotAvailable` when another transaction holds it (NOWAIT), or has
    inserted it and not committed yet (`lock_timeout`).
    """
    conn.execute(f"SET LOCAL lock_timeout = '{_INSERT_WAIT}'")
    inserted = conn.execute(
        "INSERT INTO mail_deliveries (dedupe_key, template) VALUES (%s, %s)"
        " ON CONFLICT (dedupe_key) DO NOTHING RETURNING true",
        (dedupe_key, template),
    ).fetchone()
    if inserted is not None:  # ours until we commit: nobody else can see it, let alone lock it
        return DeliveryRecord(None, None)
    row = conn.execute(
        "SELECT sent_at, obsolete_at, handed_over_at FROM mail_deliveries"
        " WHERE dedupe_key = %s FOR UPDATE NOWAIT",
        (dedupe_key,),
    ).fetchone()
    assert row is not None, "rows are never deleted while a delivery may look for them"
    return DeliveryRecord(row[0], row[1], row[2])


def record_handed_over(conn: Conn, dedupe_key: str, handed_over: bool = True) -> None:
    """Sets (or, the server having refused the message, clears) the moment of the hand-over."""
    conn.execute(
        "UPDATE mail_deliveries SET handed_over_at = CASE WHEN %s THEN clock_timestamp() END"
        " WHERE dedupe_key = %s",
        (handed_over, dedupe_key),
    )


def record_sent(conn: Conn, dedupe_key: str) -> None:
    # clock_timestamp(): the moment of acceptance, not the start of the (long) transaction.
    conn.execute(
        "UPDATE mail_deliveries SET sent_at = clock_timestamp() WHERE dedupe_key = %s", (dedupe_key,)
    )


def record_obsolete(conn: Conn, dedupe_key: str) -> None:
    conn.execute(
        "UPDATE mail_deliveries SET obsolete_at = clock_timestamp() WHERE dedupe_key = %s", (dedupe_key,)
    )


def order_status(conn: Conn, order_id: UUID) -> str | None:
    """The order's status in the orders database, None for an unknown order.

    A plain read, not a lock: locking the order for the whole SMTP exchange would hold up its
    payment for seconds. A payment committed after this read still gets the reminder.
    """
    row = conn.execute("SELECT status FROM orders WHERE id = %s", (order_id,)).fetchone()
    return None if row is None else str(row[0])
