"""The gateway's side of idempotent commands: one in-flight lock per (caller, Idempotency-Key).

While a command with a key is being processed, the same key again is `409` (`idempotency_key_in_flight`)
instead of a twin racing the first. The lock is a Redis `SET NX PX`; the database behind the actor is
the last word (the orders' idempotency record, the catalog's command ledger), so a lock Redis lost
can never make a command happen twice.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

import redis.exceptions
from aiohttp import web

from shop.domain.idempotency import check_idempotency_key, key_digest, request_fingerprint
from shop.http.errors import ApiError
from shop.redis_clients import AsyncRedis

log = logging.getLogger(__name__)

T = TypeVar("T")

# Longer than any command takes; a lock outliving a crashed gateway frees itself.
IN_FLIGHT_MS = 30_000
# Deletes the lock only if it is still ours (it may have expired and been taken by a retry).
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


@dataclass(frozen=True)
class KeyedRequest:
    """A request that carries an Idempotency-Key, as the actor is told about it."""

    user_id: UUID
    key: str
    request_hash: str

    @property
    def digest(self) -> str:
        return key_digest(self.key)

    def for_actor(self) -> dict[str, str]:
        """The `idempotency` argument of the catalog's command actors."""
        return {"user_id": str(self.user_id), "key_digest": self.digest, "request_hash": self.request_hash}


def keyed_request(request: web.Request, user_id: UUID, what: Any, required: bool) -> KeyedRequest | None:
    """The request's Idempotency-Key with the fingerprint of `what` (everything that makes the
    request what it is); None when it has none and none is required (400 when required or malformed)."""
    raw = request.headers.get("Idempotency-Key")
    if raw is None and not required:
        return None
    return KeyedRequest(user_id, check_idempotency_key(raw), request_fingerprint(what))


class InFlightLocks:
    def __init__(self, client: AsyncRedis, scope: str) -> None:
        self._redis = client
        self._scope = scope  # the context: orders and the catalog lock apart

    async def ask_once(self, keyed: KeyedRequest, ask: Callable[[], Awaitable[T | None]]) -> T | None:
        """`ask()` under the key's lock. Its answer releases the lock; a late answer (None) keeps it
        until it expires, so that a retry meanwhile gets 409 rather than a twin; a failure (not sent,
        or no telling) releases it, so that the client's retry is not refused for half a minute."""
        lock = f"{self._scope}:in-flight:{keyed.user_id}:{keyed.digest}"
        token = secrets.token_hex(16)
        if not await self._lock(lock, token):
            raise ApiError(
                409,
                "idempotency_key_in_flight",
                "a request with this Idempotency-Key is still being processed",
            )
        try:
            answer = await ask()
        except BaseException:
            await self._unlock(lock, token)
            raise
        if answer is not None:
            await self._unlock(lock, token)
        return answer

    async def _lock(self, lock: str, token: str) -> bool:
        """True when this request holds the lock, or when Redis cannot say: the database is the last
        word, so a twin never becomes a second command."""
        try:
            return bool(await self._redis.set(lock, token, nx=True, px=IN_FLIGHT_MS))
        except redis.exceptions.RedisError as exc:
            log.warning("idempotency lock unavailable (%s); going on without it", exc)
            return True

    async def _unlock(self, lock: str, token: str) -> None:
        try:
            await self._redis.eval(_RELEASE, 1, lock, token)
        except redis.exceptions.RedisError as exc:  # it expires on its own
            log.warning("could not release an idempotency lock (%s)", exc)
