"""Redis clients for one server or a Redis Cluster, as the settings say (`SHOP_REDIS_CLUSTER`).

With a cluster, `SHOP_REDIS_URL` names any one node: the client learns the others and follows the
slots as they move. Everything the shop keeps in Redis works on either: every script and every
transaction touches a single key, and what touches several keys (the login throttle's two counters)
runs one script per key (a cluster pipeline runs no scripts).
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

SyncRedis = redis.Redis | RedisCluster
AsyncRedis = aioredis.Redis | AsyncRedisCluster


# After Redis restarts, every pooled connection is dead, and the first command on each would fail
# ("Connection closed by server"): one quick retry on a fresh connection rides over that. No more:
# while Redis is down, callers hear it at once and fall back (see their error handling).
def _backoff() -> ExponentialBackoff:
    return ExponentialBackoff(cap=0.2, base=0.05)


_RETRY_ON = [redis.exceptions.ConnectionError]


def sync_redis(url: str, cluster: bool, **options: Any) -> SyncRedis:
    if cluster:
        return RedisCluster.from_url(url, **options)
    return redis.Redis.from_url(url, retry=Retry(_backoff(), retries=1), retry_on_error=_RETRY_ON, **options)


# Connections one asyncio client keeps to a server. A burst of requests past it waits for a free one
# (up to the socket timeout) instead of failing with "Too many connections".
ASYNC_POOL_SIZE = 64


def async_redis(url: str, cluster: bool, **options: Any) -> AsyncRedis:
    if cluster:
        return AsyncRedisCluster.from_url(url, max_connections=ASYNC_POOL_SIZE, **options)
    wait = options.get("socket_timeout") or 5.0
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=ASYNC_POOL_SIZE,
        timeout=wait,
        retry=AsyncRetry(_backoff(), retries=1),
        retry_on_error=_RETRY_ON,
        **options,
    )
    return aioredis.Redis(connection_pool=pool)
