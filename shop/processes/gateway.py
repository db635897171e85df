"""`shop run gateway`: the aiohttp gateway."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import uvloop
from aiohttp import web
from psycopg_pool import AsyncConnectionPool

from shop.bootstrap import DEPENDENCIES, build_broker, build_dependencies, build_readiness
from shop.db.connections import primary_options, replica_options
from shop.http.app import create_gateway_app
from shop.http.clients import ClientAddress
from shop.http.commands import CommandBus, ContextCommands
from shop.http.freshness import WriteFreshness
from shop.http.idempotency import InFlightLocks
from shop.http.middlewares import HTTP_LINE_LIMIT, AccessLogger
from shop.http.ratelimit import Policy, RedisRateLimiter, rate_limit_middleware
from shop.http.routes.auth import AuthRoutes
from shop.http.routes.journey import JourneyRoutes
from shop.http.routes.orders import OrderRoutes
from shop.http.routes.products import ProductRoutes
from shop.http.stock_watch import StockWatch
from shop.http.storefront import StorefrontConfig
from shop.observability.trace_store import JaegerQuery
from shop.redis_clients import async_redis
from shop.security.keys import load_keyring
from shop.security.throttle import LoginLimiter
from shop.security.tokens import TokenIssuer, TokenVerifier
from shop.settings import Settings

log = logging.getLogger("shop.gateway")

# Threads for blocking work: password hashing, handlers on the primary, sending to RabbitMQ.
BLOCKING_THREADS = 16


def _async_pool(url: str, name: str, primary: bool, prepared: bool) -> AsyncConnectionPool:
    options = primary_options(url, prepared) if primary else replica_options(url, prepared)
    return AsyncConnectionPool(url, min_size=1, max_size=10, open=False, name=name, kwargs=options)


def _async_pools(settings: Settings, context: str) -> tuple[AsyncConnectionPool, AsyncConnectionPool]:
    """A context's pools on the event loop: its replica (queries) and its primary (the reads that
    must see the caller's own writes)."""
    db, prepared = settings.databases[context], settings.pg_prepared_statements
    return (
        _async_pool(db.replica_url, f"{context}-replica", primary=False, prepared=prepared),
        _async_pool(db.primary_url, f"{context}-primary-async", primary=True, prepared=prepared),
    )


def run_gateway(settings: Settings, port: int | None = None) -> int:
    readiness, resources = build_readiness(settings, DEPENDENCIES)
    auth = settings.auth
    keyring = load_keyring(
        Path(auth.keys_dir), auth.signing_kid, auth.private_key_pem, generate_if_empty=auth.generate_dev_key
    )
    issuer = TokenIssuer(keyring, auth.jwt_issuer, auth.jwt_audience, auth.access_token_ttl)
    verifier = TokenVerifier(keyring, auth.jwt_issuer, auth.jwt_audience)
    needs = build_dependencies(settings)
    _, actors = build_broker(settings, needs)  # the gateway sends commands to actors

    executor = ThreadPoolExecutor(BLOCKING_THREADS, thread_name_prefix="gateway-blocking")
    replica, primary_async = _async_pools(settings, "auth")
    freshness_redis = async_redis(settings.redis_url, settings.redis_cluster)
    routes = AuthRoutes(
        actors=actors.auth,
        commands=CommandBus(executor, settings.command_timeout),
        primary=needs.primary_pool("auth"),
        replica=replica,
        primary_async=primary_async,
        reads=WriteFreshness(freshness_redis, "auth"),
        policy=needs.auth_policy,
        clock=needs.clock,
        issuer=issuer,
        throttle=LoginLimiter(
            needs.redis(),
            auth.login_failures_per_account_per_hour,
            auth.login_failures_per_client_per_hour,
        ),
    )

    def context_commands(context: str) -> ContextCommands:
        return ContextCommands(
            routes.commands, InFlightLocks(freshness_redis, context), WriteFreshness(freshness_redis, context)
        )

    # Each with its context's actors, commands (locks, write positions), replica and primary.
    products = ProductRoutes(actors.products, context_commands("catalog"), *_async_pools(settings, "catalog"))
    orders = OrderRoutes(
        actors.orders,
        context_commands("orders"),
        *_async_pools(settings, "orders"),
        stock_watch=StockWatch(settings.databases["orders"].primary_url),
    )
    trace_store = JaegerQuery(settings.trace_query_url) if settings.trace_query_url else None
    journey = JourneyRoutes(orders.replica, orders.primary, products.replica, trace_store)
    pools = [replica, primary_async, products.replica, products.primary, orders.replica, orders.primary]
    # Its own client with short timeouts: a Redis that hangs must not hang requests (see ratelimit.py).
    limiter_redis = async_redis(
        settings.redis_url, settings.redis_cluster, socket_timeout=0.25, socket_connect_timeout=0.25
    )
    rate_limit = rate_limit_middleware(
        RedisRateLimiter(limiter_redis),
        {name: Policy(name, quota, window) for name, (quota, window) in settings.rate_limits.items()},
    )
    app = create_gateway_app(
        readiness,
        settings.max_body_bytes,
        keyring,
        verifier,
        routes,
        products,
        orders,
        rate_limit,
        clients=ClientAddress(settings.trusted_proxies),
        storefront=StorefrontConfig(settings.mailpit_url, settings.orders.reminders),
        admin=journey,
    )
    listen_port = port or settings.gateway_port

    async def start(_: web.Application) -> None:
        # Not waiting for a connection: the gateway starts (and says 503 on /readyz) while a
        # database is away, and the pools connect when it returns.
        for pool in pools:
            await pool.open(wait=False)
        await orders.stock_watch.start()
        log.info("gateway: listening on http://%s:%d", settings.host, listen_port)

    async def stop(_: web.Application) -> None:
        await orders.stock_watch.stop()
        for pool in pools:
            await pool.close()
        await freshness_redis.aclose()
        await limiter_redis.aclose()
        if trace_store is not None:
            await trace_store.close()
        executor.shutdown(wait=True, cancel_futures=True)
        await resources.close()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    # libuv's event loop: the asyncio machinery (callbacks, timers, socket readiness) was a sixth of
    # the gateway's CPU on the standard loop.
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    web.run_app(
        app,
        host=settings.host,
        port=listen_port,
        access_log_class=AccessLogger,
        # Past aiohttp's 8 KiB per header line, the parser answers in plain text; up to this, the
        # header limit middleware answers 431 in the error envelope.
        max_line_size=HTTP_LINE_LIMIT,
        max_field_size=HTTP_LINE_LIMIT,
        shutdown_timeout=10,
        print=None,
    )
    return 0
