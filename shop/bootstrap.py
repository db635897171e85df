"""The composition root: settings, clients and checks wired together for each process.

The shop's settings are read from the environment here (`Settings.from_env`), and entry points ask
this module for what they need. Two other modules read it, each for what is not a setting of the
shop: the CLI (the health probe's target, `OTEL_SERVICE_NAME`) and the tracing set-up (the
OpenTelemetry SDK's own `OTEL_*` variables).
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

import dramatiq
from confluent_kafka.admin import AdminClient
from dramatiq.results import Results
from dramatiq.results.backends.redis import RedisBackend
from psycopg_pool import ConnectionPool

from shop.actors.broker import QuorumRabbitmqBroker, create_broker
from shop.actors.observability import add_actor_middlewares
from shop.actors.registry import Actors, declare_actors
from shop.db.connections import primary_options
from shop.dependencies import Dependencies
from shop.domain.clock import utc_now
from shop.domain.orders import UnpaidLimits
from shop.domain.timers import TimerPolicy
from shop.handlers.auth import AuthPolicy
from shop.handlers.mail import MailDependencies
from shop.mail.context import ContextResolver
from shop.mail.ledger import DeliveryLedger
from shop.mail.origins import LEDGER_DATABASES
from shop.mail.sender import SmtpSender
from shop.observability.logs import configure_logging
from shop.observability.readiness import (
    Check,
    Readiness,
    kafka_check,
    postgres_check,
    rabbitmq_check,
    redis_check,
)
from shop.redis_clients import SyncRedis, async_redis, sync_redis
from shop.settings import Settings

# What each dependency name in /readyz means; processes pick the ones they use.
DEPENDENCIES = ("postgres_primary", "postgres_replica", "redis", "rabbitmq", "kafka")

T = TypeVar("T")


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
            # Behind pgpool-II a replica URL may be answered by the primary: then reachable is enough.
            role = True if settings.replica_is_standby else None
            checks[name] = postgres_check(urls, timeout, expect_replica=role)
        elif name == "redis":
            client = async_redis(
                settings.redis_url,
                settings.redis_cluster,
                socket_connect_timeout=timeout,
                socket_timeout=timeout,
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


# --- What actors, agents and routes are handed --------------------------------------------------


def _made_once(factory: Callable[..., T]) -> Callable[..., T]:
    """`factory`'s object per arguments, made on first use and kept. Under a lock: worker threads
    taking their first messages together would each make one (functools.cache alone does not
    stop that), and every pool but the one kept would stay open, unused, for the process's life."""
    made = functools.cache(factory)
    lock = threading.Lock()

    @functools.wraps(factory)
    def get(*args: Any) -> T:
        with lock:
            return made(*args)

    return get


def build_dependencies(settings: Settings) -> Dependencies:
    """One process's dependencies: each pool and client made on first use, then kept."""

    @_made_once
    def primary_pool(context: str) -> ConnectionPool:
        url = settings.databases[context].primary_url
        return ConnectionPool(
            url,
            min_size=1,
            max_size=10,
            open=True,
            name=f"{context}-primary",
            kwargs=primary_options(url, settings.pg_prepared_statements),  # see shop.db.connections
        )

    @_made_once
    def redis() -> SyncRedis:
        return sync_redis(
            settings.redis_url, settings.redis_cluster, socket_timeout=5, socket_connect_timeout=5
        )

    @_made_once
    def mail() -> MailDependencies:
        sender = SmtpSender(
            host=settings.smtp_host,
            port=settings.smtp_port,
            from_address=settings.mail.from_address,
            timeout=settings.mail.smtp_timeout,
        )
        return MailDependencies(
            sender=sender,
            ledger=DeliveryLedger({name: primary_pool(name) for name in LEDGER_DATABASES}),
            contexts=ContextResolver(settings.auth.code_pepper),
        )

    orders = settings.orders
    return Dependencies(
        clock=utc_now,
        primary_pool=primary_pool,
        redis=redis,
        mail=mail,
        mail_settings=settings.mail,
        auth_policy=AuthPolicy(settings.auth.code_pepper, timedelta(seconds=settings.auth.refresh_token_ttl)),
        timer_policy=TimerPolicy.from_seconds(orders.reminders, orders.ttl),
        unpaid_limits=UnpaidLimits(orders.max_unpaid_orders, orders.max_unpaid_units),
    )


def build_broker(settings: Settings, needs: Dependencies) -> tuple[QuorumRabbitmqBroker, Actors]:
    """The process's dramatiq broker, with a Redis result backend (the gateway waits on actors'
    answers) and every actor declared on it. It is also set as dramatiq's global broker, which
    `Message.get_result` reads to find the result backend."""
    broker = create_broker(settings.rabbitmq_url)
    # Its own client: waiting for an answer is a blocking pop of up to the command timeout, which a
    # socket timeout no longer than that would cut short (and the client's retry then doubled: a
    # 5 s wait became 10). The socket outlasts the longest wait instead.
    results = sync_redis(
        settings.redis_url,
        settings.redis_cluster,
        socket_timeout=settings.command_timeout + 5,
        socket_connect_timeout=5,
    )
    backend = RedisBackend(client=results, default_timeout=60_000)  # type: ignore[no-untyped-call]
    broker.add_middleware(Results(backend=backend))  # type: ignore[no-untyped-call]
    add_actor_middlewares(broker)
    dramatiq.set_broker(broker)
    return broker, declare_actors(broker, needs)
