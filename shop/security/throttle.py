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


class LoginLimiter:
    """Fixed hourly windows of failed logins, per account and per client address."""

    def __init__(self, client: SyncRedis, per_account: int, per_client: int) -> None:
        self._redis = client
        self._limits = {"account": per_account, "client": per_client}

    def _keys(self, email: str, client: str) -> dict[str, str]:
        return {
            "account": f"auth:login-failures:account:{_digest(email)}",
            "client": f"auth:login-failures:client:{client}",
        }

    def retry_after(self, email: str, client: str) -> int:
        """Seconds until a login may be tried again (0: now)."""
        keys = self._keys(email, client)
        # Two keys in two slots of a Redis Cluster: a non-transactional pipeline, not MGET.
        reads = self._redis.pipeline(transaction=False)
        for key in keys.values():
            reads.get(key)
        counts = reads.execute()
        waits = [
            max(int(self._redis.ttl(key)), 1)
            for (kind, key), count in zip(keys.items(), counts, strict=True)
            if count is not None and int(count) >= self._limits[kind]
        ]
        return max(waits, default=0)

    def record_failure(self, email: str, client: str) -> None:
        pipe = self._redis.pipeline(transaction=False)  # each key's INCR and EXPIRE stand alone
        for key in self._keys(email, client).values():
            pipe.incr(key)
            pipe.expire(key, LOGIN_WINDOW_SECONDS, nx=True)
        pipe.execute()
