"""The command ledger: the answer each committed command gave, by the command's identity.

Shared by every database whose actors take commands (auth, catalog, orders); see the migrations'
`command_answers` for why it exists. The caller owns the transaction: the answer is recorded in the
transaction that did the command's work, or not at all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb

from shop.db.connections import Conn


@dataclass(frozen=True)
class RecordedAnswer:
    request_hash: str | None
    answer: Any


def recorded_answer(conn: Conn, command_id: str) -> RecordedAnswer | None:
    row = conn.execute(
        "SELECT request_hash, answer FROM command_answers WHERE command_id = %s", (command_id,)
    ).fetchone()
    return RecordedAnswer(row[0], row[1]) if row is not None else None


def record_answer(conn: Conn, command_id: str, actor: str, request_hash: str | None, answer: Any) -> None:
    """A twin that committed the same command first makes this a unique violation, which rolls the
    caller's whole transaction back: its work is not done twice."""
    conn.execute(
        "INSERT INTO command_answers (command_id, actor, request_hash, answer) VALUES (%s, %s, %s, %s)",
        (command_id, actor, request_hash, Jsonb(answer, dumps=_dumps)),
    )


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def forget_answers(conn: Conn, older_than: float, limit: int) -> int:
    """Deletes up to `limit` of the oldest answers recorded more than `older_than` seconds ago; how
    many. Past that age no retry or redelivery of the command is expected any more, and a client's
    Idempotency-Key is forgotten (the same key then makes a new command)."""
    cursor = conn.execute(
        """
        DELETE FROM command_answers
         WHERE command_id IN (
               SELECT command_id FROM command_answers
                WHERE answered_at < now() - make_interval(secs => %(age)s)
                ORDER BY answered_at
                LIMIT %(limit)s
               )
        """,
        {"age": older_than, "limit": limit},
    )
    return cursor.rowcount
