from __future__ import annotations

import asyncio

from shop.observability.readiness import Readiness


async def _up() -> None:
    return None


async def _refused() -> None:
    raise ConnectionError("connection refused by postgresql://u:pw@h/db")


async def _hangs() -> None:
    await asyncio.sleep(10)


async def test_each_dependency_is_reported_by_name():
    results = await Readiness({"redis": _up, "kafka": _refused}, timeout=1).run()
    by_name = {r.name: r for r in results}
    assert by_name["redis"].up
    assert not by_name["kafka"].up
    assert "connection refused" in (by_name["kafka"].error or "")


async def test_a_hanging_dependency_is_down_after_the_timeout():
    (result,) = await Readiness({"rabbitmq": _hangs}, timeout=0.05).run()
    assert not result.up
    assert "no answer within" in (result.error or "")


async def test_errors_do_not_leak_passwords():
    (result,) = await Readiness({"postgres_primary": _refused}, timeout=1).run()
    assert "pw" not in (result.error or "").replace("***", "")


async def test_results_are_cached_briefly():
    calls = 0

    async def counted() -> None:
        nonlocal calls
        calls += 1

    readiness = Readiness({"redis": counted}, timeout=1, cache_seconds=60)
    await readiness.run()
    await readiness.run()
    assert calls == 1
    uncached = Readiness({"redis": counted}, timeout=1, cache_seconds=0)
    await uncached.run()
    await uncached.run()
    assert calls == 3
