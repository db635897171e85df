"""Catalog routes. Writes (admin) go to the product actors; reads go to the replica, except for
an admin whose own last write the replica has not replayed yet (read-your-writes by WAL position).

Writes take an `Idempotency-Key` (required for stock adjustments, which are not safe to repeat):
the same key with the same request answers what the first did, and does it once."""

from __future__ import annotations

import re
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import dramatiq
import psycopg
from aiohttp import web
from psycopg_pool import AsyncConnectionPool

from shop.actors.products import ProductActors
from shop.db import products as db
from shop.domain import products as rules
from shop.domain.idempotency import check_idempotency_key
from shop.http.auth import optional_principal, require_admin
from shop.http.commands import ContextCommands, answered
from shop.http.errors import ApiError
from shop.http.idempotency import KeyedRequest, keyed_request
from shop.http.pagination import decode_cursor, encode_cursor
from shop.http.routing import spec_of
from shop.http.validation import params, valid_body
from shop.schemas.views import product_view

_IF_MATCH = re.compile(r'^\s*(?:W/)?"?(\d{1,9})"?\s*$')


@dataclass
class ProductRoutes:
    actors: ProductActors
    commands: ContextCommands  # the catalog's: its locks and its write positions
    replica: AsyncConnectionPool
    primary: AsyncConnectionPool

    def _reading(self, request: web.Request) -> AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]:
        principal = optional_principal(request)
        user_id = principal.user_id if principal else None
        return self.commands.freshness.connection(user_id, self.replica, self.primary)

    async def _command(
        self,
        request: web.Request,
        actor: dramatiq.Actor[..., Any],
        keyed: KeyedRequest | None,
        **kwargs: Any,
    ) -> Any:
        principal = require_admin(request)
        if keyed is not None:
            kwargs["idempotency"] = keyed.for_actor()
        answer = await self.commands.ask(principal.user_id, actor, keyed, **kwargs)
        return answered(answer, "the catalog did not answer in time; retry")["product"]

    # --- commands ------------------------------------------------------------------------------

    def _keyed(self, request: web.Request, what: dict[str, Any], required: bool) -> KeyedRequest | None:
        """The request's Idempotency-Key, standing for `what` and the route it came to."""
        spec = spec_of(request)
        route = f"{spec.method} {spec.path}" if spec is not None else request.path
        return keyed_request(request, require_admin(request).user_id, {"route": route, **what}, required)

    async def create(self, request: web.Request) -> web.Response:
        body = await valid_body(request)
        keyed = self._keyed(request, {"body": body}, required=False)
        product = await self._command(request, self.actors.create_product, keyed, fields=body)
        return _product_response(product, status=201, location=f"/api/v1/products/{product['id']}")

    async def patch(self, request: web.Request) -> web.Response:
        product_id = _product_id(request)
        raw = request.headers.get("If-Match")
        if raw is None:
            raise ApiError(428, "if_match_required", "send If-Match with the version you are changing")
        match = _IF_MATCH.match(raw)
        if match is None:
            raise ApiError(400, "invalid_if_match", 'If-Match must be the product version, e.g. "3"')
        changes = await valid_body(request)
        version = int(match[1])
        keyed = self._keyed(
            request, {"product_id": str(product_id), "version": version, "body": changes}, required=False
        )
        product = await self._command(
            request,
            self.actors.patch_product,
            keyed,
            product_id=str(product_id),
            changes=changes,
            expected_version=version,
        )
        return _product_response(product)

    async def adjust_stock(self, request: web.Request) -> web.Response:
        product_id = _product_id(request)
        # Required: a delta applied twice is stock that does not exist (a retry after a timeout).
        check_idempotency_key(request.headers.get("Idempotency-Key"))  # 400 before the body's errors
        body = await valid_body(request)
        keyed = self._keyed(request, {"product_id": str(product_id), "body": body}, required=True)
        product = await self._command(
            request, self.actors.adjust_stock, keyed, product_id=str(product_id), delta=body["delta"]
        )
        return _product_response(product)

    # --- queries -------------------------------------------------------------------------------

    async def list(self, request: web.Request) -> web.Response:
        query = params(request)
        limit, after = query["limit"], decode_cursor(query.get("cursor"))
        async with self._reading(request) as conn:
            page = await db.list_products(conn, after, limit)
        next_cursor = encode_cursor(page[-1].id) if len(page) == limit else None
        return web.json_response({"items": [product_view(p) for p in page], "next_cursor": next_cursor})

    async def get(self, request: web.Request) -> web.Response:
        product_id = _product_id(request)
        async with self._reading(request) as conn:
            product = await db.get_product(conn, product_id)
        if product is None:
            raise rules.ProductNotFound(f"no product {product_id}")
        return _product_response(product_view(product))

    async def events(self, request: web.Request) -> web.Response:
        product_id = _product_id(request)
        async with self._reading(request) as conn:
            events = await db.events_of(conn, product_id)
        if not events:
            raise rules.ProductNotFound(f"no product {product_id}")
        items = [
            {
                "seq": e.seq,
                "event_id": str(e.event_id),
                "version": e.version,
                "type": e.type,
                "data": e.data,
                "occurred_at": e.occurred_at.isoformat(),
            }
            for e in events
        ]
        return web.json_response({"items": items})


def _product_id(request: web.Request) -> UUID:
    return UUID(params(request)["product_id"])  # checked: a malformed id is a 404 like an unknown one


def _product_response(
    product: dict[str, Any], status: int = 200, location: str | None = None
) -> web.Response:
    headers = {"ETag": f'"{product["version"]}"'}
    if location:
        headers["Location"] = location
    return web.json_response(product, status=status, headers=headers)
