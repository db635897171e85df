"""Application factories: the gateway, and the small health app of every other process."""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web
from aiohttp.typedefs import Middleware

from shop.http.auth import identity_middleware, jwks_handler
from shop.http.health import add_health_routes
from shop.http.middlewares import (
    body_limit_middleware,
    error_middleware,
    metrics_middleware,
    request_id_middleware,
)
from shop.http.openapi import openapi
from shop.http.routes.auth import AuthRoutes, add_auth_routes
from shop.http.routes.orders import OrderRoutes, add_order_routes
from shop.http.routes.products import ProductRoutes, add_product_routes
from shop.observability.readiness import Readiness
from shop.security.keys import KeyRing
from shop.security.tokens import TokenVerifier


def create_base_app(
    readiness: Readiness, max_body_bytes: int, extra_middlewares: Sequence[Middleware] = ()
) -> web.Application:
    """Middlewares and health routes that every process's HTTP endpoint shares."""
    app = web.Application(
        middlewares=[
            request_id_middleware,
            metrics_middleware,
            error_middleware,
            body_limit_middleware(max_body_bytes),
            *extra_middlewares,
        ],
        client_max_size=max_body_bytes,
    )
    add_health_routes(app, readiness)
    return app


def create_gateway_app(
    readiness: Readiness,
    max_body_bytes: int,
    keyring: KeyRing,
    verifier: TokenVerifier,
    auth: AuthRoutes | None,
    products: ProductRoutes | None = None,
    orders: OrderRoutes | None = None,
) -> web.Application:
    """The gateway. Contexts are None only in tests of the shared behaviour, which need no database."""
    app = create_base_app(readiness, max_body_bytes, [identity_middleware(verifier)])
    app.router.add_get("/api/v1/openapi.json", openapi)
    app.router.add_get("/.well-known/jwks.json", jwks_handler(keyring))
    if auth is not None:
        add_auth_routes(app, auth)
    if products is not None:
        add_product_routes(app, products)
    if orders is not None:
        add_order_routes(app, orders)
    return app
