"""Which server answers a query: the replica, unless it is behind what the caller must see."""

from __future__ import annotations

from typing import Any

import psycopg


async def replica_has_replayed(conn: psycopg.AsyncConnection[Any], lsn: str) -> bool:
    """True when this replica has replayed the WAL up to `lsn` (or is not a replica at all)."""
    # Not "pg_last_wal_replay_lsn() is NULL": a primary that went through crash recovery at its
    # start keeps answering the last position it replayed then, for good.
    cur = await conn.execute(
        "SELECT NOT pg_is_in_recovery() OR pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)
    )
    row = await cur.fetchone()
    return bool(row and row[0])
