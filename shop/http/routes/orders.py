"""Order routes. Placement is idempotent per (user, Idempotency-Key): a Redis lock covers the
request while it is in flight, the orders database's idempotency record is the last word."""

from __future__ import annotations

import hashlib
import logging
import secrets
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import dramatiq
import psycopg
import redis.exceptions
from aiohttp import web
from psycopg_pool import AsyncConnectionPool

from shop.db import orders as db
from shop.domain import orders as rules
from shop.domain.ids import uuid7
from shop.handlers.orders import IdempotencyKeyReused
from shop.http.auth import require_principal
from shop.http.commands import CommandBus, raise_refusal
from shop.http.errors import ApiError
from shop.http.freshness import WriteFreshness
from shop.http.pagination import decode_cursor, encode_cursor
from shop.http.validation import params, valid_body
from shop.redis_clients import AsyncRedis
from shop.schemas.views import order_view

log = logging.getLogger(__name__)

# Longer than any placement takes; a lock outliving a crashed gateway frees itself.
IN_FLIGHT_MS = 30_000
_ERRORS: dict[str, type[rules.OrderRuleError]] = {
    cls.__name__: cls
    for cls in (
        rules.InvalidOrder,
        rules.UnknownProduct,
        rules.InvalidTransition,
        rules.OrderNotFound,
        rules.StockNotReserved,
        IdempotencyKeyReused,
    )
}
# Deletes the lock only if it is still ours (it may have expired and been taken by a retry).
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


@dataclass(frozen=True)
class OrderActors:
    place: dramatiq.Actor[..., dict[str, Any]]
    pay: dramatiq.Actor[..., dict[str, Any]]
    cancel: dramatiq.Actor[..., dict[str, Any]]


@dataclass
class OrderRoutes:
    actors: OrderActors
    commands: CommandBus
    replica: AsyncConnectionPool
    primary: AsyncConnectionPool
    redis: AsyncRedis
    freshness: WriteFreshness

    def _reading(self, user_id: UUID) -> AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]:
        return self.freshness.connection(user_id, self.replica, self.primary)

    async def place(self, request: web.Request) -> web.Response:
        principal = require_principal(request)
        key = rules.check_idempotency_key(request.headers.get("Idempotency-Key"))
        body = await valid_body(request)
        lines = rules.parse_lines(body)  # merges lines of one product; the shape is already checked
        lock = f"orders:in-flight:{principal.user_id}:{hashlib.sha256(key.encode()).hexdigest()}"
        token = secrets.token_hex(16)
        if not await self._lock(lock, token):
            raise ApiError(
                409,
                "idempotency_key_in_flight",
                "a request with this Idempotency-Key is still being processed",
            )
        order_id = uuid7()
        try:
            answer = await self.commands.ask(
                self.actors.place,
                order_id=str(order_id),
                user_id=str(principal.user_id),
                idempotency_key=key,
                request_hash=rules.request_fingerprint(body),
                lines=[{"product_id": str(line.product_id), "quantity": line.quantity} for line in lines],
                customer_email=principal.email,
            )
        except BaseException:
            # Not sent (RabbitMQ away), or no telling: the client's retry must not meet a 409 for
            # half a minute. Should the command run after all, the retry's twin finds its order.
            await self._unlock(lock, token)
            raise
        if answer is None:
            # Still working: the lock stays until it expires, so a retry meanwhile gets 409, not a twin.
            location = f"/api/v1/orders/{order_id}"
            return web.json_response(
                {"status": "processing", "id": str(order_id)}, status=202, headers={"Location": location}
            )
        await self._unlock(lock, token)
        raise_refusal(answer, _ERRORS, rules.OrderRuleError)
        if answer.get("commit_lsn"):
            await self.freshness.remember(principal.user_id, answer["commit_lsn"])
        order = answer["order"]
        return web.json_response(order, status=201, headers={"Location": f"/api/v1/orders/{order['id']}"})

    async def _lock(self, lock: str, token: str) -> bool:
        """True when this request holds the key's in-flight lock, or when Redis cannot say: the
        orders database's idempotency record is the last word, so a twin never becomes a second order."""
        try:
            return bool(await self.redis.set(lock, token, nx=True, px=IN_FLIGHT_MS))
        except redis.exceptions.RedisError as exc:
            log.warning("idempotency lock unavailable (%s); placing without it", exc)
            return True

    async def _unlock(self, lock: str, token: str) -> None:
        try:
            await self.redis.eval(_RELEASE, 1, lock, token)
        except redis.exceptions.RedisError as exc:  # it expires on its own
            log.warning("could not release an idempotency lock (%s)", exc)

    async def _transition(
        self, request: web.Request, actor: dramatiq.Actor[..., Any], **kwargs: Any
    ) -> web.Response:
        principal = require_principal(request)
        order_id = _order_id(request)
        answer = await self.commands.ask(
            actor, order_id=str(order_id), user_id=str(principal.user_id), **kwargs
        )
        if answer is None:
            raise ApiError(
                503, "command_timeout", "the order did not answer in time; retry", {"Retry-After": "1"}
            )
        raise_refusal(answer, _ERRORS, rules.OrderRuleError)
        if answer.get("commit_lsn"):
            await self.freshness.remember(principal.user_id, answer["commit_lsn"])
        return web.json_response(answer["order"])

    async def pay(self, request: web.Request) -> web.Response:
        reference = (await valid_body(request))["payment_reference"]
        return await self._transition(request, self.actors.pay, payment_reference=reference)

    async def cancel(self, request: web.Request) -> web.Response:
        return await self._transition(request, self.actors.cancel)

    async def get(self, request: web.Request) -> web.Response:
        principal = require_principal(request)
        order_id = _order_id(request)
        async with self._reading(principal.user_id) as conn:
            found = await db.order_async(conn, order_id)
        # Someone else's order is as absent as a missing one: ids are not a way to probe.
        if found is None or found[0].user_id != principal.user_id:
            raise ApiError(404, "not_found", "no such order")
        return web.json_response(order_view(*found))

    async def list(self, request: web.Request) -> web.Response:
        principal = require_principal(request)
        query = params(request)
        limit, before = query["limit"], decode_cursor(query.get("cursor"))
        async with self._reading(principal.user_id) as conn:
            page = await db.orders_of(conn, principal.user_id, before, limit)
        next_cursor = encode_cursor(page[-1][0].id) if len(page) == limit else None
        return web.json_response({"items": [order_view(*o) for o in page], "next_cursor": next_cursor})


def _order_id(request: web.Request) -> UUID:
    return UUID(params(request)["order_id"])  # checked: a malformed id is a 404 like an unknown one
