"""Which emails the SMTP server already accepted, and which are being sent right now, in Redis.

Keys, per dedupe key K:
  mail:sent:K     "1" for 30 days once the SMTP server accepted the email
  mail:sending:K  a random token while one delivery holds the in-flight guard (SET NX PX)
"""

from __future__ import annotations

import secrets

from shop.redis_clients import SyncRedis

# Longer than any redelivery or retry schedule of a mail message (minutes to hours), short enough
# that the keyspace does not grow forever.
SENT_TTL_SECONDS = 30 * 24 * 3600

# Delete the guard only if it still holds our token: after it expired, another delivery may own it.
_RELEASE_IF_OWNER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisSentLedger:
    def __init__(self, client: SyncRedis, in_flight_ttl: float) -> None:
        self._redis = client
        self._in_flight_ms = max(1, int(in_flight_ttl * 1000))
        self._release = client.register_script(_RELEASE_IF_OWNER)

    def already_sent(self, key: str) -> bool:
        return bool(self._redis.exists(f"mail:sent:{key}"))

    def claim(self, key: str) -> str | None:
        """Take the in-flight guard for `key`: a token to release it with, or None if another
        delivery holds it. It expires on its own, so a worker that died mid-send frees it."""
        token = secrets.token_hex(16)
        taken = self._redis.set(f"mail:sending:{key}", token, nx=True, px=self._in_flight_ms)
        return token if taken else None

    def record_sent(self, key: str) -> None:
        self._redis.set(f"mail:sent:{key}", 1, ex=SENT_TTL_SECONDS)

    def release(self, key: str, token: str) -> None:
        self._release(keys=[f"mail:sending:{key}"], args=[token])
