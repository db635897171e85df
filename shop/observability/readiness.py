"""Readiness: does each dependency of a process answer right now?

Each check is an async callable that returns quietly when its dependency answers and raises when it
does not. `Readiness.run` runs them concurrently, each under a timeout, and caches the verdict for a
moment so a load balancer polling every few milliseconds cannot turn /readyz into a load test of
the databases.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pika
import psycopg
from confluent_kafka.admin import AdminClient

from shop.actors.broker import connection_parameters
from shop.db.connections import primary_options, replica_options
from shop.db.server import in_recovery
from shop.redis_clients import AsyncRedis
from shop.settings import redact

Check = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class CheckResult:
    name: str
    up: bool
    latency_ms: float
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "status": "up" if self.up else "down",
            "latency_ms": round(self.latency_ms, 1),
        }
        if self.error:
            body["error"] = self.error
        return body


class Readiness:
    def __init__(self, checks: Mapping[str, Check], timeout: float, cache_seconds: float = 1.0) -> None:
        self._checks = dict(checks)
        self._timeout = timeout
        self._cache_seconds = cache_seconds
        self._cached: tuple[float, list[CheckResult]] | None = None
        self._lock = asyncio.Lock()

    @property
    def names(self) -> list[str]:
        return list(self._checks)

    async def run(self) -> list[CheckResult]:
        async with self._lock:  # concurrent probes share one round of checks
            now = time.monotonic()
            if self._cached and now - self._cached[0] < self._cache_seconds:
                return self._cached[1]
            results = list(await asyncio.gather(*(self._run_one(n, c) for n, c in self._checks.items())))
            self._cached = (time.monotonic(), results)
            return results

    async def _run_one(self, name: str, check: Check) -> CheckResult:
        started = time.perf_counter()
        try:
            await asyncio.wait_for(check(), self._timeout)
        except TimeoutError:
            return CheckResult(name, False, _ms_since(started), f"no answer within {self._timeout:g}s")
        except Exception as exc:  # any failure means "down"; the message says why
            reason = redact(f"{type(exc).__name__}: {exc}".strip())
            return CheckResult(name, False, _ms_since(started), reason)
        return CheckResult(name, True, _ms_since(started))


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def postgres_check(urls: Sequence[str], timeout: float, expect_replica: bool | None) -> Check:
    """Connects to each database; a replica must also be in recovery (i.e. really a standby), and
    the primary must not be. `expect_replica=None`: any role will do (a pool in front of both)."""

    async def check() -> None:
        async def one(url: str) -> None:
            try:
                # Named like the pools, so a pgpool routes the check where the pools' queries go.
                options = replica_options(url) if expect_replica is not False else primary_options(url)
                conn = await psycopg.AsyncConnection.connect(
                    url, connect_timeout=max(1, int(timeout)), **options
                )
            except psycopg.OperationalError as exc:
                raise ConnectionError(f"{_database_name(url)}: {str(exc).strip().splitlines()[0]}") from None
            async with conn:
                # Asked whatever the role expected: the check proves a statement goes through too.
                recovering = await in_recovery(conn)
                if expect_replica is not None and recovering != expect_replica:
                    role = "a replica" if expect_replica else "the primary"
                    raise RuntimeError(f"{_database_name(url)} is not {role}")

        await asyncio.gather(*(one(u) for u in urls))

    return check


def _database_name(url: str) -> str:
    return url.rsplit("/", 1)[-1].split("?", 1)[0]


def redis_check(client: AsyncRedis) -> Check:
    async def check() -> None:
        if not await client.ping():
            raise ConnectionError("PING got no PONG")

    return check


def rabbitmq_check(url: str, timeout: float) -> Check:
    """Opens and closes a real AMQP connection (TCP, handshake, vhost access) to the first node of
    the cluster that answers."""

    def connect() -> None:
        nodes = connection_parameters(url)
        for params in nodes:
            params.socket_timeout = timeout
            params.blocked_connection_timeout = timeout
            params.connection_attempts = 1
            params.stack_timeout = timeout
        pika.BlockingConnection(nodes).close()

    async def check() -> None:
        try:
            await asyncio.to_thread(connect)
        except pika.exceptions.AMQPError as exc:
            raise ConnectionError(repr(exc)) from None

    return check


def kafka_check(admin: AdminClient, timeout: float) -> Check:
    """Asks the cluster for its metadata: answers only when a broker is reachable."""

    def metadata() -> None:
        cluster = admin.list_topics(timeout=timeout)
        if not cluster.brokers:
            raise ConnectionError("no broker in the cluster metadata")

    async def check() -> None:
        await asyncio.to_thread(metadata)

    return check
