"""Read-your-writes over a lagging replica, by WAL position; and the primary while the replica is away.

After a caller's write the actor answers with the primary's WAL LSN at commit; it is kept in Redis
for a minute under the caller's id. That caller's reads use the replica only once it has replayed
past that position, else the primary. Everyone else reads the replica.

When Redis cannot tell that position, the read goes to the primary (always fresh). When the replica
cannot be reached (refused, or no connection within REPLICA_WAIT), reads go to the primary for
REPLICA_HOLD_OFF seconds before the replica is tried again: its outage costs the primary some reads
instead of costing clients errors or the pool's 30 s wait.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import psycopg
import redis.exceptions
from prometheus_client import Counter
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from shop.db.routing import replica_has_replayed
from shop.redis_clients import AsyncRedis

log = logging.getLogger(__name__)

FRESHNESS_SECONDS = 60
REPLICA_WAIT = 0.5  # seconds to wait for a replica connection before reading the primary
REPLICA_HOLD_OFF = 5.0  # seconds the primary answers alone once the replica failed

REPLICA_FALLBACKS = Counter(
    "shop_gateway_replica_fallbacks_total",
    "Times a context's replica could not be reached, so its reads went to the primary for a while",
    ["database"],
)


class WriteFreshness:
    """Remembers, per user and database, the primary's WAL position after their last write."""

    def __init__(self, client: AsyncRedis, database: str = "catalog") -> None:
        self._redis = client
        self._database = database
        self._replica_away_until = 0.0

    async def remember(self, user_id: UUID, lsn: str) -> None:
        try:
            await self._redis.set(f"{self._database}:written-lsn:{user_id}", lsn, ex=FRESHNESS_SECONDS)
        except redis.exceptions.RedisError as exc:  # the write stands; this caller may read it late
            log.warning("could not remember a write's position (%s)", exc)

    async def lsn_for(self, user_id: UUID) -> str | None:
        value = await self._redis.get(f"{self._database}:written-lsn:{user_id}")
        return value.decode() if isinstance(value, bytes) else value

    @asynccontextmanager
    async def connection(
        self, user_id: UUID | None, replica: AsyncConnectionPool, primary: AsyncConnectionPool
    ) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """The replica, unless it has not yet replayed this caller's own last write, or Redis cannot
        say whether it has, or the replica is away."""
        try:
            lsn = await self.lsn_for(user_id) if user_id is not None else None
            fresh_enough_possible = True
        except redis.exceptions.RedisError:
            lsn, fresh_enough_possible = None, False
        if fresh_enough_possible and time.monotonic() >= self._replica_away_until:
            handed_out = False
            try:
                async with replica.connection(timeout=REPLICA_WAIT) as conn:
                    if lsn is None or await replica_has_replayed(conn, lsn):
                        handed_out = True
                        yield conn
                        return
            except (PoolTimeout, psycopg.OperationalError) as exc:
                self._replica_failed(exc)
                if handed_out:
                    raise  # it failed under the caller's own query: that request gets its 503
        async with primary.connection() as conn:
            yield conn

    def _replica_failed(self, exc: BaseException) -> None:
        if time.monotonic() >= self._replica_away_until:
            REPLICA_FALLBACKS.labels(self._database).inc()
            log.warning(
                "%s replica unavailable (%s: %s); reading the primary for %.0f s",
                self._database,
                type(exc).__name__,
                str(exc).splitlines()[0] if str(exc) else "",
                REPLICA_HOLD_OFF,
            )
        self._replica_away_until = time.monotonic() + REPLICA_HOLD_OFF
