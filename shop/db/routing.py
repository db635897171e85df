"""Which server answers a query: the replica, unless it is behind what the caller must see."""

from __future__ import annotations

from typing import Any

import psycopg


async def replica_has_replayed(conn: psycopg.AsyncConnection[Any], lsn: str) -> bool:
    """True when this replica has replayed the WAL up to `lsn` (or is not a replica at all)."""
    cur = await conn.execute("SELECT coalesce(pg_last_wal_replay_lsn() >= %s::pg_lsn, true)", (lsn,))
    row = await cur.fetchone()
    return bool(row and row[0])
