"""Waiting, without polling, for an order's stock outcome: one LISTEN per gateway.

The order side announces each stock outcome on a PostgreSQL channel once it committed
(`shop.db.orders.STOCK_SETTLED_CHANNEL`, payload: the order id). A request that asked to wait
(`Prefer: wait=N`) registers before it reads the order, so an outcome that commits in between wakes
it too, then sleeps until its order's notification or the end of its wait. A notification lost with
the connection only makes the request wait its whole time: it then answers with the order as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import UUID

import psycopg

from shop.db.connections import primary_options
from shop.db.orders import listen_for_stock_outcomes

log = logging.getLogger(__name__)

MAX_WAIT = 10.0  # seconds: the longest `Prefer: wait` honoured
_WAIT = re.compile(r"(?:^|[,;\s])wait\s*=\s*(\d{1,4})(?:$|[,;\s])", re.IGNORECASE)
RECONNECT_PAUSE = 1.0


def preferred_wait(prefer: str | None) -> float | None:
    """The seconds of `Prefer: wait=N` (RFC 7240), at most MAX_WAIT; None when not asked."""
    if not prefer:
        return None
    match = _WAIT.search(prefer)
    return min(float(match[1]), MAX_WAIT) if match else None


class StockWatch:
    def __init__(self, url: str) -> None:
        self._url = url
        self._waiting: dict[UUID, list[asyncio.Event]] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="stock-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @asynccontextmanager
    async def watching(self, order_id: UUID) -> AsyncIterator[asyncio.Event]:
        """An event set when the order's stock outcome is announced, while the block runs."""
        settled = asyncio.Event()
        self._waiting.setdefault(order_id, []).append(settled)
        try:
            yield settled
        finally:
            waiters = self._waiting.get(order_id, [])
            if settled in waiters:
                waiters.remove(settled)
            if not waiters:
                self._waiting.pop(order_id, None)

    async def _listen(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._url, autocommit=True, **primary_options(self._url)
                ) as conn:
                    await listen_for_stock_outcomes(conn)
                    async for notify in conn.notifies():
                        self._settled(notify.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database away: requests wait their whole time meanwhile
                log.warning("stock watch: %s; listening again in %.0f s", exc, RECONNECT_PAUSE)
                await asyncio.sleep(RECONNECT_PAUSE)

    def _settled(self, payload: str) -> None:
        try:
            order_id = UUID(payload)
        except ValueError:
            return
        for settled in self._waiting.get(order_id, []):
            settled.set()


async def wait_for(settled: asyncio.Event, seconds: float) -> bool:
    """True when the outcome came within `seconds`."""
    try:
        await asyncio.wait_for(settled.wait(), seconds)
    except TimeoutError:
        return False
    return True
