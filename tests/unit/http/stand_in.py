"""A gateway whose contexts are stand-ins: every route of a context is served by one handler, so
tests exercise the real middlewares and the real document without any database."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from typing import Any

from aiohttp import web

from shop.http.app import create_gateway_app
from shop.observability.readiness import Readiness
from tests.unit.http.test_gateway_app import KEYRING, VERIFIER, _up

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CONTEXTS = ("auth", "products", "orders")


class EveryRoute:
    """A context's routes object whose every route is `handler`."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler

    def __getattr__(self, name: str) -> Handler:
        return self._handler


def stand_in_gateway(handler: Handler, contexts: Collection[str] = CONTEXTS) -> web.Application:
    """The gateway with `contexts` served by `handler` (the others absent), Redis taken as up."""
    stand: Any = EveryRoute(handler)
    auth, products, orders = (stand if name in contexts else None for name in CONTEXTS)
    readiness = Readiness({"redis": _up}, timeout=1, cache_seconds=0)
    return create_gateway_app(readiness, 1 << 20, KEYRING, VERIFIER, auth, products, orders)
