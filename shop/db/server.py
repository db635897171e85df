"""What a PostgreSQL server says about itself."""

from __future__ import annotations

from typing import Any

import psycopg


async def in_recovery(conn: psycopg.AsyncConnection[Any]) -> bool:
    """True on a standby (replaying a primary's WAL), False on a primary."""
    cursor = await conn.execute("SELECT pg_is_in_recovery()")
    row = await cursor.fetchone()
    return bool(row and row[0])
