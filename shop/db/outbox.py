"""The outbox tables, seen from the relay: claim what is unsent, mark what was sent.

Writers insert into `outbox` inside the transaction that changed their state (see the migration);
these queries are the other side.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg

NOTIFY_CHANNEL = "outbox"
# One lease per database: only its holder publishes, so rows leave in id order and per-key order
# survives several relays running at once (the others are hot standbys).
RELAY_LEASE_ID = 7_301_947_113


KAFKA = "kafka"
RABBITMQ = "rabbitmq"


@dataclass(frozen=True)
class OutboxRow:
    id: int
    event_id: UUID
    destination: str  # KAFKA: `topic` is a topic; RABBITMQ: `topic` is a queue, payload names the actor
    topic: str
    key: str | None
    payload: Any
    headers: dict[str, str]
    created_at: datetime

    def value(self) -> bytes:
        return json.dumps(self.payload, separators=(",", ":")).encode()


def listen(conn: psycopg.Connection[Any]) -> None:
    """Writers NOTIFY the channel when they commit outbox rows (see the migration): the relay wakes."""
    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")  # a constant: LISTEN takes no parameter


def try_take_lease(conn: psycopg.Connection[Any]) -> bool:
    """Session-level: held until this connection closes, so a crashed relay frees it at once."""
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (RELAY_LEASE_ID,)).fetchone()
    return bool(row and row[0])


def claim_unsent(conn: psycopg.Connection[Any], limit: int) -> list[OutboxRow]:
    """Oldest unsent rows, locked until the caller's transaction ends."""
    rows = conn.execute(
        """
        SELECT id, event_id, destination, topic, message_key, payload, headers, created_at
          FROM outbox
         WHERE published_at IS NULL
         ORDER BY id
         LIMIT %s
           FOR UPDATE
        """,
        (limit,),
    ).fetchall()
    return [OutboxRow(*row) for row in rows]


def backlog(conn: psycopg.Connection[Any]) -> tuple[int, float]:
    """How many rows are unsent, and the age in seconds of the oldest (0 when none). Cheap: the
    partial index `outbox_unpublished` holds only unsent rows."""
    row = conn.execute(
        """
        SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0)
          FROM outbox WHERE published_at IS NULL
        """
    ).fetchone()
    return (int(row[0]), float(row[1])) if row is not None else (0, 0.0)


def mark_sent(conn: psycopg.Connection[Any], ids: Sequence[int]) -> None:
    conn.execute("UPDATE outbox SET published_at = now() WHERE id = ANY(%s)", (list(ids),))


def delete_published(conn: psycopg.Connection[Any], older_than: float, limit: int) -> int:
    """Deletes those of the `limit` oldest rows (by id) that were published more than `older_than`
    seconds ago; how many. Unsent rows are never touched.

    Only the oldest rows are looked at, so each call costs `limit` rows of the primary key however
    large the table: rows are published in id order, so the rows old enough to go are the first
    ones. A caller repeats while it deletes any.
    """
    cursor = conn.execute(
        """
        DELETE FROM outbox
         WHERE id IN (
               SELECT id
                 FROM (SELECT id, published_at FROM outbox ORDER BY id LIMIT %(limit)s) AS oldest
                WHERE published_at < now() - make_interval(secs => %(age)s)
               )
        """,
        {"age": older_than, "limit": limit},
    )
    return cursor.rowcount


@dataclass(frozen=True)
class OutboxMessage:
    """A message for the outbox, as a unit of work collects it."""

    event_id: UUID
    destination: str
    topic: str
    key: str | None
    payload: Any
    headers: dict[str, str] = field(default_factory=dict)


def insert_messages(conn: psycopg.Connection[Any], rows: Sequence[OutboxMessage]) -> None:
    """Adds messages to the outbox inside the caller's transaction, in their order (ids ascend with
    it), in one statement however many: a placement writes three, a reservation two."""
    if len(rows) == 1:
        row = rows[0]
        insert_event(conn, row.event_id, row.topic, row.key, row.payload, row.headers, row.destination)
        return
    conn.execute(
        """
        INSERT INTO outbox (event_id, destination, topic, message_key, payload, headers)
        SELECT event_id, destination, topic, message_key, payload, headers
          FROM unnest(%s::uuid[], %s::text[], %s::text[], %s::text[], %s::jsonb[], %s::jsonb[])
               WITH ORDINALITY AS m(event_id, destination, topic, message_key, payload, headers, n)
         ORDER BY n
        """,
        (
            [row.event_id for row in rows],
            [row.destination for row in rows],
            [row.topic for row in rows],
            [row.key for row in rows],
            [json.dumps(row.payload) for row in rows],
            [json.dumps(row.headers) for row in rows],
        ),
    )


def insert_event(
    conn: psycopg.Connection[Any],
    event_id: UUID,
    topic: str,
    key: str | None,
    payload: Any,
    headers: dict[str, str] | None = None,
    destination: str = KAFKA,
) -> None:
    """Adds a message to the outbox inside the caller's transaction."""
    conn.execute(
        """
        INSERT INTO outbox (event_id, destination, topic, message_key, payload, headers)
        VALUES (%s, %s, %s, %s, %s, %s)
        """,
        (event_id, destination, topic, key, json.dumps(payload), json.dumps(headers or {})),
    )
