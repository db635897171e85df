"""Read-your-writes over a lagging replica, by WAL position.

After a caller's write the actor answers with the primary's WAL LSN at commit; it is kept in Redis
for a minute under the caller's id. That caller's reads use the replica only once it has replayed
past that position, else the primary. Everyone else reads the replica.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import psycopg
from psycopg_pool import AsyncConnectionPool

from shop.db.routing import replica_has_replayed
from shop.redis_clients import AsyncRedis

FRESHNESS_SECONDS = 60


class WriteFreshness:
    """Remembers, per user and database, the primary's WAL position after their last write."""

    def __init__(self, client: AsyncRedis, database: str = "catalog") -> None:
        self._redis = client
        self._database = database

    async def remember(self, user_id: UUID, lsn: str) -> None:
        await self._redis.set(f"{self._database}:written-lsn:{user_id}", lsn, ex=FRESHNESS_SECONDS)

    async def lsn_for(self, user_id: UUID) -> str | None:
        value = await self._redis.get(f"{self._database}:written-lsn:{user_id}")
        return value.decode() if isinstance(value, bytes) else value

    @asynccontextmanager
    async def connection(
        self, user_id: UUID | None, replica: AsyncConnectionPool, primary: AsyncConnectionPool
    ) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """The replica, unless it has not yet replayed this caller's own last write."""
        lsn = await self.lsn_for(user_id) if user_id is not None else None
        async with replica.connection() as conn:
            if lsn is None or await replica_has_replayed(conn, lsn):
                yield conn
                return
        async with primary.connection() as conn:
            yield conn
