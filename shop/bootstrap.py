"""The composition root: settings, clients and checks wired together for each process.

Nothing else in the package reads the environment; entry points ask this module for what they need.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from confluent_kafka.admin import AdminClient

from shop.observability.logs import configure_logging
from shop.observability.readiness import (
    Check,
    Readiness,
    kafka_check,
    postgres_check,
    rabbitmq_check,
    redis_check,
)
from shop.settings import Settings

# What each dependency name in /readyz means; processes pick the ones they use.
DEPENDENCIES = ("postgres_primary", "postgres_replica", "redis", "rabbitmq", "kafka")


def load_settings() -> Settings:
    settings = Settings.from_env(os.environ)
    configure_logging(settings.log_level, settings.log_format)
    return settings


def kafka_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    """Client configuration shared by every Kafka producer, consumer and admin client."""
    return {
        "bootstrap.servers": settings.kafka_bootstrap,
        # librdkafka logs through Python logging instead of writing to stderr on its own.
        "logger": logging.getLogger("shop.kafka"),
        **extra,
    }


@dataclass
class Resources:
    """Clients a process opened, closed together when it stops."""

    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def close(self) -> None:
        for close in reversed(self.closers):
            await close()
        self.closers.clear()


def build_readiness(settings: Settings, needs: Iterable[str]) -> tuple[Readiness, Resources]:
    resources = Resources()
    timeout = settings.readiness_timeout
    checks: dict[str, Check] = {}
    for name in needs:
        if name == "postgres_primary":
            urls = [db.primary_url for db in settings.databases.values()]
            checks[name] = postgres_check(urls, timeout, expect_replica=False)
        elif name == "postgres_replica":
            urls = [db.replica_url for db in settings.databases.values()]
            checks[name] = postgres_check(urls, timeout, expect_replica=True)
        elif name == "redis":
            client = aioredis.from_url(
                settings.redis_url, socket_connect_timeout=timeout, socket_timeout=timeout
            )
            resources.closers.append(client.aclose)
            checks[name] = redis_check(client)
        elif name == "rabbitmq":
            checks[name] = rabbitmq_check(settings.rabbitmq_url, timeout)
        elif name == "kafka":
            setup_timeout_ms = int(timeout * 1000)
            admin = AdminClient(
                kafka_config(settings, **{"socket.connection.setup.timeout.ms": setup_timeout_ms})
            )
            checks[name] = kafka_check(admin, timeout)
        else:
            raise ValueError(f"unknown dependency {name!r}; known: {', '.join(DEPENDENCIES)}")
    return Readiness(checks, timeout=timeout + 0.5), resources
