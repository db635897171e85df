"""The open-loop generator against fake requests: the schedule holds whatever the requests do."""

from __future__ import annotations

import asyncio
import io
import itertools
import time
from collections.abc import Awaitable, Callable

import pytest

from bench.openloop import OpenLoopResult, arrival_offsets, open_loop, quantile


def run(
    rate: float, seconds: float, make_request: Callable[[int], Awaitable[bool]], **kwargs: object
) -> OpenLoopResult:
    return asyncio.run(open_loop(rate, seconds, make_request, **kwargs))  # type: ignore[arg-type]


def sleeping(
    delay: Callable[[int], float], ok: Callable[[int], bool] = lambda i: True
) -> Callable[[int], Awaitable[bool]]:
    async def request(i: int) -> bool:
        await asyncio.sleep(delay(i))
        return ok(i)

    return request


def test_quantile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert quantile(values, 0.5) == 50
    assert quantile(values, 0.95) == 95
    assert quantile(values, 0.99) == 99
    assert quantile(values, 1.0) == 100
    assert quantile([7.0], 0.99) == 7
    assert quantile([], 0.5) == 0
    with pytest.raises(ValueError, match="quantile"):
        quantile(values, 0)


def test_constant_arrivals_are_evenly_spaced_and_poisson_ones_are_seeded() -> None:
    assert arrival_offsets(10, 0.5, poisson=False, seed=0) == [0.0, 0.1, 0.2, 0.3, 0.4]
    first = arrival_offsets(1000, 2, poisson=True, seed=7)
    assert first == arrival_offsets(1000, 2, poisson=True, seed=7)
    assert first != arrival_offsets(1000, 2, poisson=True, seed=8)
    assert 1800 < len(first) < 2200
    assert all(0 <= a < b < 2 for a, b in itertools.pairwise(first))


def test_slow_requests_do_not_slow_the_schedule() -> None:
    # 20 requests of 100 ms each at 100/s: a closed loop of one would take 2 s; open-loop ~0.3 s.
    started = time.perf_counter()
    result = run(100, 0.2, sleeping(lambda i: 0.1))
    assert time.perf_counter() - started < 0.6
    assert (result.sent, result.ok, result.errors) == (20, 20, 0)
    assert 95 <= result.p50_ms < 130


def test_a_stall_shows_in_the_latency_of_the_requests_due_during_it() -> None:
    async def request(i: int) -> bool:
        if i == 2:
            time.sleep(0.2)  # noqa: ASYNC251  # blocks the whole loop, as a stalled client or GC pause would
        return True

    result = run(100, 0.3, request)
    assert result.count == 30  # every request due was still sent
    # Requests 3..21 were due during the 200 ms stall: measured from when they were due, not sent.
    assert result.max_ms >= 180
    assert result.p50_ms >= 20
    assert result.p99_ms >= 150


def test_percentiles_of_known_delays() -> None:
    # 100 requests at 1000/s taking 2, 4, ..., 200 ms: nearest-rank p50 is 100 ms, p99 198 ms.
    result = run(1000, 0.1, sleeping(lambda i: (i + 1) * 0.002))
    assert result.ok == 100
    assert 100 <= result.p50_ms < 115
    assert 190 <= result.p95_ms < 205
    assert 198 <= result.p99_ms < 215
    assert 200 <= result.max_ms < 220


def test_achieved_matches_offered_when_the_server_keeps_up() -> None:
    result = run(400, 0.25, sleeping(lambda i: 0.001))
    assert result.offered_rate == 400
    assert result.count == 100
    assert 0.9 * 400 <= result.achieved_rate <= 400.5


def test_errors_and_exceptions_are_counted_and_left_out_of_the_latencies() -> None:
    async def request(i: int) -> bool:
        if i % 10 == 3:
            raise RuntimeError("boom")
        return i % 2 == 0

    result = run(500, 0.1, request)
    assert result.count == 50
    # Odd indexes fail: 25 of them (3, 13, ... raise, among the odd ones).
    assert (result.ok, result.errors) == (25, 25)
    assert result.error_ratio == 0.5
    assert result.achieved_rate < 0.6 * 500


def test_warmup_requests_are_sent_but_not_measured() -> None:
    seen: list[int] = []

    async def request(i: int) -> bool:
        seen.append(i)
        return i >= 10  # the warmup ones fail: that must not count

    result = run(100, 0.1, request, warmup=0.1)
    assert len(seen) == 20
    assert result.first_measured == 10
    assert (result.count, result.ok, result.errors) == (10, 10, 0)


def test_the_in_flight_cap_drops_requests_and_counts_them() -> None:
    result = run(100, 0.1, sleeping(lambda i: 0.1), max_in_flight=4)
    assert (result.count, result.sent, result.dropped) == (10, 4, 6)
    assert (result.ok, result.errors) == (4, 6)


def test_requests_still_outstanding_after_the_drain_timeout_are_errors() -> None:
    result = run(100, 0.05, sleeping(lambda i: 30 if i == 0 else 0), drain_timeout=0.1)
    assert (result.count, result.ok, result.errors) == (5, 4, 1)


def test_progress_is_one_line_rewritten_in_place() -> None:
    out = io.StringIO()
    run(100, 0.2, sleeping(lambda i: 0.001), progress=True, progress_interval=0.05, out=out)
    text = out.getvalue()
    assert text.count("\r") >= 2
    assert text.endswith("\n")
    assert text.count("\n") == 1
    assert "in flight" in text
    assert "p99" in text
