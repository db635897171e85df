"""Application factories: the gateway, and the small health app of every other process."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from shop.http.auth import identity_middleware, jwks_handler
from shop.http.clients import ClientAddress, client_middleware
from shop.http.docs import DocsRoutes
from shop.http.headers import secure_headers, strip_headers_middleware
from shop.http.health import add_health_routes
from shop.http.middlewares import (
    body_limit_middleware,
    error_middleware,
    header_limit_middleware,
    metrics_middleware,
    request_id_middleware,
    tracing_middleware,
)
from shop.http.openapi import openapi
from shop.http.ratelimit import add_headers as add_rate_limit_headers
from shop.http.routes.auth import AuthRoutes
from shop.http.routes.journey import JourneyRoutes
from shop.http.routes.orders import OrderRoutes
from shop.http.routes.products import ProductRoutes
from shop.http.routing import add_routes
from shop.http.storefront import StorefrontConfig, StorefrontRoutes
from shop.http.validation import contract_middleware
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
            tracing_middleware,
            metrics_middleware,
            error_middleware,
            body_limit_middleware(max_body_bytes),
            header_limit_middleware,
            *extra_middlewares,
        ],
        client_max_size=max_body_bytes,
    )
    add_health_routes(app, readiness)
    return app


@dataclass(frozen=True)
class GatewayRoutes:
    """The gateway's own routes (context "gateway" in the routing table)."""

    openapi: Handler
    jwks: Handler
    docs: Handler
    docs_asset: Handler
    storefront: Handler
    storefront_asset: Handler
    storefront_config: Handler


def create_gateway_app(
    readiness: Readiness,
    max_body_bytes: int,
    keyring: KeyRing,
    verifier: TokenVerifier,
    auth: AuthRoutes | None,
    products: ProductRoutes | None = None,
    orders: OrderRoutes | None = None,
    rate_limit: Middleware | None = None,
    clients: ClientAddress | None = None,
    storefront: StorefrontConfig | None = None,
    admin: JourneyRoutes | None = None,
) -> web.Application:
    """The gateway. Contexts are None only in tests of the shared behaviour, which need no database.
    Routes come from the routing table (shop/http/routing.py). `clients` says whose X-Forwarded-For
    is believed (by default nobody's: the peer is the client); `storefront` what the storefront's
    page is told (shop/http/storefront.py); `admin` serves an order's journey."""
    middlewares = [
        client_middleware(clients or ClientAddress(())),  # the rate limiter and login count by it
        identity_middleware(verifier),
        *([rate_limit] if rate_limit else []),
        # Inside the limiter: stripping clones the request, and what a middleware leaves on a clone
        # is not seen by the on_response_prepare hooks (they get the original request).
        strip_headers_middleware,
        contract_middleware,  # access, then parameters, from the table and the document
    ]
    app = create_base_app(readiness, max_body_bytes, middlewares)
    docs = DocsRoutes()
    shop_pages = StorefrontRoutes(storefront or StorefrontConfig())
    contexts: dict[str, object] = {
        "gateway": GatewayRoutes(
            openapi,
            jwks_handler(keyring),
            docs.page,
            docs.asset,
            shop_pages.page,
            shop_pages.asset,
            shop_pages.config,
        )
    }
    for name, routes in (("auth", auth), ("products", products), ("orders", orders), ("admin", admin)):
        if routes is not None:
            contexts[name] = routes
    add_routes(app, contexts)
    app.on_response_prepare.append(secure_headers)
    app.on_response_prepare.append(add_rate_limit_headers)
    return app
