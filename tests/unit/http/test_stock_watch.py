from __future__ import annotations

import asyncio
import uuid

import pytest

from shop.http.stock_watch import MAX_WAIT, StockWatch, preferred_wait, wait_for


@pytest.mark.parametrize(
    ("prefer", "seconds"),
    [
        (None, None),
        ("", None),
        ("wait=5", 5.0),
        ("respond-async, wait=3", 3.0),
        ("WAIT = 2", 2.0),
        ("wait=100", MAX_WAIT),
        ("return=minimal", None),
        ("wait=abc", None),
        ("nowait=5", None),
    ],
)
def test_the_wait_a_client_prefers(prefer, seconds):
    assert preferred_wait(prefer) == seconds


async def test_an_announcement_wakes_the_requests_that_watch_its_order_and_no_other():
    watch = StockWatch("postgresql://nowhere/none")
    mine, other = uuid.uuid4(), uuid.uuid4()
    async with watch.watching(mine) as settled, watch.watching(other) as not_mine:
        watch._settled(str(mine))
        assert await wait_for(settled, 1)
        assert not await wait_for(not_mine, 0.05)
        watch._settled("not an id")  # ignored
    assert watch._waiting == {}  # the watchers are gone with their blocks


async def test_without_an_announcement_the_wait_ends_on_time():
    watch = StockWatch("postgresql://nowhere/none")
    async with watch.watching(uuid.uuid4()) as settled:
        started = asyncio.get_running_loop().time()
        assert not await wait_for(settled, 0.1)
        assert asyncio.get_running_loop().time() - started < 1
