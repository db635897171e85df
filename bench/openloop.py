"""An open-loop load generator: requests arrive at a fixed rate whatever the server does.

Request i is due at t0 + i/rate (or at Poisson arrival times from a seeded RNG) and is started as its
own task at that time, however many are still outstanding. Its latency is measured from that
INTENDED time, not from when it actually left: when the server (or this process) stalls, the requests
that should have gone out meanwhile carry the stall in their latency instead of silently not being
sent ("coordinated omission"). A cap on requests in flight keeps a dead server from piling up tasks
without end; a request that could not be started under the cap counts as dropped (an error).
"""

from __future__ import annotations

import asyncio
import math
import random
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TextIO

MakeRequest = Callable[[int], Awaitable[bool]]


def quantile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank quantile of an ascending sequence: the smallest value with at least q of them <= it."""
    if not ordered:
        return 0.0
    if not 0 < q <= 1:
        raise ValueError(f"quantile must be in (0, 1], got {q}")
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass(frozen=True)
class OpenLoopResult:
    offered_rate: float  # requests per second asked for (measured window)
    seconds: float  # length of the measured window, as scheduled
    elapsed: float  # from the window's start until its last request finished (>= seconds)
    sent: int  # measured requests started
    ok: int  # measured requests that succeeded
    errors: int  # failed, raised, timed out at the end, or dropped under the in-flight cap
    dropped: int  # of the errors: never started because max_in_flight requests were outstanding
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    first_measured: int  # requests with a smaller index were the warmup

    @property
    def count(self) -> int:
        """Measured requests scheduled (sent + dropped)."""
        return self.sent + self.dropped

    @property
    def achieved_rate(self) -> float:
        """Successful completions per second over the window (stretched if the last ones were late)."""
        return self.ok / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def error_ratio(self) -> float:
        return self.errors / self.count if self.count else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "count": self.count,
            "achieved_rate": round(self.achieved_rate, 2),
            "error_ratio": round(self.error_ratio, 4),
        }

    def line(self) -> str:
        return (
            f"offered {self.offered_rate:7.1f}/s  achieved {self.achieved_rate:7.1f}/s"
            f"  p50 {self.p50_ms:7.1f}  p95 {self.p95_ms:7.1f}  p99 {self.p99_ms:7.1f}"
            f"  max {self.max_ms:7.1f} ms  errors {self.errors}/{self.count}"
        )


def arrival_offsets(rate: float, total_seconds: float, poisson: bool, seed: int) -> list[float]:
    """Seconds after t0 at which each request is due, over `total_seconds`."""
    if rate <= 0:
        raise ValueError(f"rate must be positive, got {rate}")
    if not poisson:
        return [i / rate for i in range(math.floor(total_seconds * rate + 1e-9))]
    rng = random.Random(seed)
    offsets: list[float] = []
    at = rng.expovariate(rate)
    while at < total_seconds:
        offsets.append(at)
        at += rng.expovariate(rate)
    return offsets


async def open_loop(
    rate: float,
    seconds: float,
    make_request: MakeRequest,
    warmup: float = 0.0,
    progress: bool = False,
    *,
    poisson: bool = False,
    seed: int = 0,
    max_in_flight: int = 2000,
    drain_timeout: float = 10.0,
    progress_interval: float = 0.5,
    out: TextIO | None = None,
) -> OpenLoopResult:
    """Sends `make_request(i)` at `rate` per second for `warmup` + `seconds`; measures the last `seconds`.

    `make_request` answers True for a success; False or an exception is an error. Requests still
    outstanding `drain_timeout` seconds after the last one was due are cancelled and count as errors.
    """
    offsets = arrival_offsets(rate, warmup + seconds, poisson, seed)
    first_measured = next((i for i, at in enumerate(offsets) if at >= warmup), len(offsets))
    latencies: list[float] = []  # measured successes, seconds from the intended start
    finished_at: list[float] = []  # measured requests' completion times
    errors = dropped = sent = 0
    done_total = 0
    tasks: dict[asyncio.Task[None], int] = {}  # outstanding: task -> request index
    warmup_sent = 0
    stream = out if out is not None else sys.stderr
    clock = time.perf_counter
    t0 = clock()

    async def one(i: int, intended: float) -> None:
        nonlocal errors, done_total
        try:
            ok = await make_request(i)
        except asyncio.CancelledError:
            raise
        except Exception:
            ok = False
        now = clock()
        done_total += 1
        if i < first_measured:
            return
        finished_at.append(now)
        if ok:
            latencies.append(now - intended)
        else:
            errors += 1

    def show(final: bool = False) -> None:
        recent = sorted(latencies[-2000:])
        stream.write(
            f"\r  {clock() - t0:6.1f} s  sent {sent + warmup_sent:>6}  done {done_total:>6}"
            f"  in flight {len(tasks):>5}  errors {errors:>4}"
            f"  p50 {quantile(recent, 0.5) * 1000:7.1f} ms  p99 {quantile(recent, 0.99) * 1000:7.1f} ms"
            + ("\n" if final else "")
        )
        stream.flush()

    async def ticker() -> None:
        while True:
            await asyncio.sleep(progress_interval)
            show()

    progress_task = asyncio.create_task(ticker()) if progress else None
    try:
        for i, offset in enumerate(offsets):
            intended = t0 + offset
            delay = intended - clock()
            if delay > 0:
                await asyncio.sleep(delay)
            if len(tasks) >= max_in_flight:
                if i >= first_measured:
                    errors += 1
                    dropped += 1
                continue
            if i >= first_measured:
                sent += 1
            else:
                warmup_sent += 1
            task = asyncio.create_task(one(i, intended))
            tasks[task] = i
            task.add_done_callback(lambda t: tasks.pop(t, None))
        if tasks:
            _, pending = await asyncio.wait(set(tasks), timeout=drain_timeout)
            late = [tasks[task] for task in pending if task in tasks]
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
            errors += sum(1 for i in late if i >= first_measured)  # timed out: failures
    finally:
        if progress_task is not None:
            progress_task.cancel()
            show(final=True)
    window_start = t0 + warmup
    elapsed = max(seconds, (max(finished_at) - window_start) if finished_at else 0.0)
    ordered = sorted(latencies)
    return OpenLoopResult(
        offered_rate=rate,
        seconds=seconds,
        elapsed=elapsed,
        sent=sent,
        ok=len(latencies),
        errors=errors,
        dropped=dropped,
        p50_ms=quantile(ordered, 0.5) * 1000,
        p95_ms=quantile(ordered, 0.95) * 1000,
        p99_ms=quantile(ordered, 0.99) * 1000,
        max_ms=(ordered[-1] * 1000) if ordered else 0.0,
        first_measured=first_measured,
    )
