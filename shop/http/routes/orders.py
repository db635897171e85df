"""Order routes. Placement is idempotent per (user, Idempotency-Key): a Redis lock covers the
request while it is in flight, the orders database's idempotency record is the last word. A
placement that outlasts the wait is answered 202 with a Location that leads to its outcome."""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import dramatiq
import psycopg
from aiohttp import web
from psycopg_pool import AsyncConnectionPool

from shop.actors.orders import OrderActors
from shop.db import orders as db
from shop.domain import orders as rules
from shop.domain.idempotency import check_idempotency_key, request_fingerprint
from shop.domain.ids import uuid7
from shop.http.auth import require_principal
from shop.http.commands import ContextCommands, answered
from shop.http.errors import ApiError, refused
from shop.http.idempotency import KeyedRequest
from shop.http.pagination import decode_cursor, encode_cursor
from shop.http.stock_watch import StockWatch, preferred_wait, wait_for
from shop.http.validation import params, valid_body
from shop.schemas.views import order_view


@dataclass
class OrderRoutes:
    actors: OrderActors
    commands: ContextCommands  # the orders': their locks and their write positions
    replica: AsyncConnectionPool
    primary: AsyncConnectionPool
    stock_watch: StockWatch

    def _reading(self, user_id: UUID) -> AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]:
        return self.commands.freshness.connection(user_id, self.replica, self.primary)

    async def place(self, request: web.Request) -> web.Response:
        principal = require_principal(request)
        key = check_idempotency_key(request.headers.get("Idempotency-Key"))  # before the body: 400 first
        body = await valid_body(request)
        lines = rules.parse_lines(body)  # merges lines of one product; the shape is already checked
        # What the key stands for is the body alone (the orders' records have always hashed it so).
        keyed = KeyedRequest(principal.user_id, key, request_fingerprint(body))
        placement = rules.placement_id(principal.user_id, key)
        order_id = uuid7()
        wait = preferred_wait(request.headers.get("Prefer"))
        # Watching before the command is sent: an outcome announced before the answer arrives
        # still counts (it can come first: the inventory answers within milliseconds).
        async with self.stock_watch.watching(order_id) as settled:
            answer = await self.commands.ask(
                principal.user_id,
                self.actors.place_order,
                keyed,
                order_id=str(order_id),
                user_id=str(principal.user_id),
                idempotency_key=key,
                request_hash=keyed.request_hash,
                lines=[{"product_id": str(line.product_id), "quantity": line.quantity} for line in lines],
                customer_email=principal.email,
                placement_id=str(placement),
            )
            if answer is None:
                # Still working: it is durable in RabbitMQ and will be done. The placement's page
                # says what became of it, whichever retry of this key makes the order.
                location = f"/api/v1/orders/placements/{placement}"
                return web.json_response(
                    {"status": "processing", "placement_id": str(placement)},
                    status=202,
                    headers={"Location": location, "Retry-After": "1"},
                )
            order = answer["order"]
            headers = {"Location": f"/api/v1/orders/{order['id']}"}
            if wait is not None:
                # A replay answers an older order, which this watch was not about.
                watched = settled if order["id"] == str(order_id) else None
                order = await self._stock_waited(order, wait, headers, watched)
        return web.json_response(order, status=201, headers=headers)

    async def _stock_waited(
        self, order: dict[str, Any], wait: float, headers: dict[str, str], settled: asyncio.Event | None
    ) -> dict[str, Any]:
        """`Prefer: wait=N`: the order once its stock is no longer `reserving`, or after N seconds
        (RFC 7240: the answer is the same, only later), instead of the client polling for it.
        `settled`: the order's watch, registered before `order` was read; None: watch it now, and
        read it again (an outcome announced before the watch began would be missed)."""
        headers["Preference-Applied"] = f"wait={wait:g}"
        if order["stock"] != rules.Stock.RESERVING:
            return order
        order_id = UUID(order["id"])
        deadline = asyncio.get_running_loop().time() + wait
        async with AsyncExitStack() as stack:
            if settled is None:
                settled = await stack.enter_async_context(self.stock_watch.watching(order_id))
                settled.set()  # read once more before the first wait
            while order["stock"] == rules.Stock.RESERVING:
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0 or not (settled.is_set() or await wait_for(settled, left)):
                    break
                settled.clear()
                # The outcome was committed on the primary: read it there.
                async with self.primary.connection() as conn:
                    found = await db.order_async(conn, order_id)
                if found is None:
                    break
                order = order_view(*found)
        return order

    async def placement(self, request: web.Request) -> web.StreamResponse:
        """What became of a placement answered 202: its order (303 to it), its latest refusal (the
        error the placement would have answered), or, while neither exists yet, 200 processing."""
        principal = require_principal(request)
        placement = UUID(params(request)["placement_id"])
        async with self._reading(principal.user_id) as conn:
            outcome = await db.placement_outcome(conn, placement, principal.user_id)
        if outcome is not None and outcome.order_id is not None:
            location = f"/api/v1/orders/{outcome.order_id}"
            return web.json_response(
                {"status": "placed", "order_id": str(outcome.order_id)},
                status=303,
                headers={"Location": location},
            )
        if outcome is not None and outcome.refusal_code is not None:
            raise refused(outcome.refusal_code, outcome.refusal_message or "")
        return web.json_response(
            {"status": "processing", "placement_id": str(placement)}, headers={"Retry-After": "1"}
        )

    async def _transition(
        self, request: web.Request, actor: dramatiq.Actor[..., Any], **kwargs: Any
    ) -> web.Response:
        principal = require_principal(request)
        order_id = _order_id(request)
        answer = await self.commands.ask(
            principal.user_id, actor, None, order_id=str(order_id), user_id=str(principal.user_id), **kwargs
        )
        return web.json_response(answered(answer, "the order did not answer in time; retry")["order"])

    async def pay(self, request: web.Request) -> web.Response:
        reference = (await valid_body(request))["payment_reference"]
        return await self._transition(request, self.actors.pay_order, payment_reference=reference)

    async def cancel(self, request: web.Request) -> web.Response:
        return await self._transition(request, self.actors.cancel_order)

    async def get(self, request: web.Request) -> web.Response:
        principal = require_principal(request)
        order_id = _order_id(request)
        wait = preferred_wait(request.headers.get("Prefer"))
        async with self.stock_watch.watching(order_id) as settled:  # before the read: see place
            async with self._reading(principal.user_id) as conn:
                found = await db.order_async(conn, order_id)
            # Someone else's order is as absent as a missing one: ids are not a way to probe.
            if found is None or found[0].user_id != principal.user_id:
                raise ApiError(404, "not_found", "no such order")
            headers: dict[str, str] = {}
            order = order_view(*found)
            if wait is not None:
                # The replica may not show an outcome announced before the watch began: the first
                # look after it is at the primary.
                settled.set()
                order = await self._stock_waited(order, wait, headers, settled)
        return web.json_response(order, headers=headers)

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
