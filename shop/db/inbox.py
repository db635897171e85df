"""The inbox every consumer shares: the event ids it has handled, recorded in its own transaction."""

from __future__ import annotations

from uuid import UUID

from shop.db.connections import Conn


def record_handled(conn: Conn, consumer: str, event_id: UUID) -> bool:
    """Records `event_id` in the inbox of `consumer`; False when it was there already.

    A concurrent transaction inserting the same id makes this wait for its outcome, so exactly
    one of two overlapping deliveries gets True.
    """
    cur = conn.execute(
        "INSERT INTO inbox (consumer, event_id) VALUES (%s, %s) ON CONFLICT DO NOTHING RETURNING 1",
        (consumer, event_id),
    )
    return cur.fetchone() is not None
