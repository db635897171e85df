"""A small closed-loop HTTP load generator: N connections, each sending its next request when the
previous answer arrived, bounded by time and by request count. Only ever aimed at loopback."""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass
from urllib.parse import urlparse

import aiohttp

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class LoadResult:
    name: str
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def line(self) -> str:
        return (
            f"{self.name:<22} {self.rate:>9,.0f} req/s"
            f"   p50 {self.p50_ms:6.2f} ms   p99 {self.p99_ms:6.2f} ms"
            f"   ({self.requests:,} requests, {self.errors} errors, {self.seconds:.1f} s)"
        )


async def run_load(
    name: str,
    url: str,
    connections: int,
    seconds: float,
    max_requests: int,
    expect_status: int = 200,
    headers: dict[str, str] | None = None,
) -> LoadResult:
    if urlparse(url).hostname not in LOOPBACK:
        raise ValueError(f"refusing to load anything but loopback: {url}")
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def one_connection(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while time.perf_counter() < deadline and len(latencies) + errors < max_requests:
            started = time.perf_counter()
            try:
                async with session.get(url) as response:
                    await response.read()
                    ok = response.status == expect_status
            except aiohttp.ClientError:
                ok = False
            if ok:
                latencies.append(time.perf_counter() - started)
            else:
                errors += 1

    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        await one_connection_warmup(session, url)
        started = time.perf_counter()
        await asyncio.gather(*(one_connection(session) for _ in range(connections)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    p99_index = max(0, int(len(latencies) * 0.99) - 1)
    return LoadResult(
        name,
        len(latencies),
        errors,
        elapsed,
        statistics.median(latencies) * 1000 if latencies else 0.0,
        latencies[p99_index] * 1000 if latencies else 0.0,
    )


async def one_connection_warmup(session: aiohttp.ClientSession, url: str) -> None:
    for _ in range(50):
        async with session.get(url) as response:
            await response.read()
