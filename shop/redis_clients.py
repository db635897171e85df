"""Redis clients for one server or a Redis Cluster, as the settings say (`SHOP_REDIS_CLUSTER`).

With a cluster, `SHOP_REDIS_URL` names any one node: the client learns the others and follows the
slots as they move. Everything the shop keeps in Redis works on either: every script and every
transaction touches a single key, and what reads or writes several keys at once (the login
throttle's two counters) uses non-transactional pipelines, which a cluster client splits by slot.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster

SyncRedis = redis.Redis | RedisCluster
AsyncRedis = aioredis.Redis | AsyncRedisCluster


def sync_redis(url: str, cluster: bool, **options: Any) -> SyncRedis:
    if cluster:
        return RedisCluster.from_url(url, **options)
    return redis.Redis.from_url(url, **options)


# Connections one asyncio client keeps to a server. A burst of requests past it waits for a free one
# (up to the socket timeout) instead of failing with "Too many connections".
ASYNC_POOL_SIZE = 64


def async_redis(url: str, cluster: bool, **options: Any) -> AsyncRedis:
    if cluster:
        return AsyncRedisCluster.from_url(url, max_connections=ASYNC_POOL_SIZE, **options)
    wait = options.get("socket_timeout") or 5.0
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=ASYNC_POOL_SIZE, timeout=wait, **options
    )
    return aioredis.Redis(connection_pool=pool)
