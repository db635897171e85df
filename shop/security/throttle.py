"""Redis-backed throttles of the auth context: failed-login limits and the resend cooldown of
addresses that have no account (those of real accounts live in PostgreSQL)."""

from __future__ import annotations

import hashlib

from shop.redis_clients import SyncRedis

LOGIN_WINDOW_SECONDS = 3600


def _digest(text: str) -> str:
    # Keys hold a digest, not the address: a Redis dump is not a list of customers.
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class AddressCooldowns:
    def __init__(self, client: SyncRedis) -> None:
        self._redis = client

    def try_start(self, email: str, seconds: int) -> int:
        """0 when a cooldown for `email` starts now; else the seconds left of the running one."""
        key = f"auth:cooldown:{_digest(email)}"
        if self._redis.set(key, 1, nx=True, ex=seconds):
            return 0
        return max(int(self._redis.ttl(key)), 1)


# One script per counter, so a counter never exists without its window: INCR and EXPIRE as two
# commands could leave the INCR alone (a dropped connection between them), and an account or client
# locked for good. Per key, not both counters in one script: in a Redis Cluster they live in two slots.
_COUNT_FAILURE = """
local count = redis.call('INCR', KEYS[1])
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""
# The count and the seconds left of its window; a counter found without a TTL (written before the
# script above, or by hand) gets a window again instead of refusing forever.
_READ_COUNT = """
local count = redis.call('GET', KEYS[1])
if not count then return {0, 0} end
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then
    redis.call('EXPIRE', KEYS[1], ARGV[1])
    ttl = tonumber(ARGV[1])
end
return {tonumber(count), ttl}
"""


class LoginLimiter:
    """Fixed hourly windows of failed logins, per account and per client (see `shop.http.clients`)."""

    def __init__(self, client: SyncRedis, per_account: int, per_client: int) -> None:
        self._count_failure = client.register_script(_COUNT_FAILURE)
        self._read_count = client.register_script(_READ_COUNT)
        self._limits = {"account": per_account, "client": per_client}

    def keys(self, email: str, client: str) -> dict[str, str]:
        return {
            "account": f"auth:login-failures:account:{_digest(email)}",
            "client": f"auth:login-failures:client:{client}",
        }

    def retry_after(self, email: str, client: str) -> int:
        """Seconds until a login may be tried again (0: now)."""
        # One script call per key, not a pipeline: the two keys sit in two slots of a Redis Cluster,
        # and a cluster pipeline runs no scripts.
        waits = []
        for kind, key in self.keys(email, client).items():
            count, ttl = self._read_count(keys=[key], args=[LOGIN_WINDOW_SECONDS])
            if int(count) >= self._limits[kind]:
                waits.append(max(int(ttl), 1))
        return max(waits, default=0)

    def record_failure(self, email: str, client: str) -> None:
        for key in self.keys(email, client).values():
            self._count_failure(keys=[key], args=[LOGIN_WINDOW_SECONDS])
