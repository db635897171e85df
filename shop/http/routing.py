"""The gateway's routing table, in one place: each public route, its context, the handler that serves
it, its rate-limit group and who may call it. The app registers its routes from here, the rate
limiter, the access check and the response transformation read their settings from here, and the
OpenAPI document (and with it every request validator) is built from it. The rate-limit groups are
declared here only: the settings give each its quota (SHOP_RATE_LIMITS).

aiohttp is imported when the gateway registers or looks up its routes, not with the table: the
settings read the groups from here, and `shop health` reads the settings at every check."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp import web


class Access(StrEnum):
    ANYONE = "anyone"
    CUSTOMER = "customer"  # any valid access token
    OWNER = "owner"  # a valid token, and the resource must be the caller's (else 404)
    ADMIN = "admin"


@dataclass(frozen=True)
class RouteSpec:
    method: str
    path: str
    context: str  # auth, products, orders, admin, gateway
    handler: str  # the attribute of the context's routes object that answers
    limit: str | None  # the rate-limit group (SHOP_RATE_LIMITS); None: not limited
    access: Access


ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("GET", "/api/v1/openapi.json", "gateway", "openapi", None, Access.ANYONE),
    RouteSpec("GET", "/.well-known/jwks.json", "gateway", "jwks", None, Access.ANYONE),
    RouteSpec("GET", "/docs", "gateway", "docs", None, Access.ANYONE),
    RouteSpec("GET", "/docs/static/{filename}", "gateway", "docs_asset", None, Access.ANYONE),
    RouteSpec("GET", "/", "gateway", "storefront", None, Access.ANYONE),
    RouteSpec("GET", "/assets/{filename}", "gateway", "storefront_asset", None, Access.ANYONE),
    RouteSpec("GET", "/storefront.json", "gateway", "storefront_config", None, Access.ANYONE),
    RouteSpec("POST", "/api/v1/auth/register", "auth", "register", "auth", Access.ANYONE),
    RouteSpec("POST", "/api/v1/auth/verify", "auth", "verify", "auth", Access.ANYONE),
    RouteSpec("POST", "/api/v1/auth/resend", "auth", "resend", "auth", Access.ANYONE),
    RouteSpec("POST", "/api/v1/auth/login", "auth", "login", "auth", Access.ANYONE),
    RouteSpec("POST", "/api/v1/auth/refresh", "auth", "refresh", "auth", Access.ANYONE),
    RouteSpec("POST", "/api/v1/auth/logout", "auth", "logout", "auth", Access.ANYONE),
    RouteSpec("GET", "/api/v1/auth/me", "auth", "me", "auth", Access.CUSTOMER),
    RouteSpec("GET", "/api/v1/products", "products", "list", "products", Access.ANYONE),
    RouteSpec("POST", "/api/v1/products", "products", "create", "products", Access.ADMIN),
    RouteSpec("GET", "/api/v1/products/{product_id}", "products", "get", "products", Access.ANYONE),
    RouteSpec("PATCH", "/api/v1/products/{product_id}", "products", "patch", "products", Access.ADMIN),
    RouteSpec(
        "POST", "/api/v1/products/{product_id}/stock", "products", "adjust_stock", "products", Access.ADMIN
    ),
    RouteSpec("GET", "/api/v1/products/{product_id}/events", "products", "events", "products", Access.ADMIN),
    RouteSpec("POST", "/api/v1/orders", "orders", "place", "orders", Access.CUSTOMER),
    RouteSpec("GET", "/api/v1/orders", "orders", "list", "orders", Access.CUSTOMER),
    RouteSpec(
        "GET", "/api/v1/orders/placements/{placement_id}", "orders", "placement", "orders", Access.OWNER
    ),
    RouteSpec("GET", "/api/v1/orders/{order_id}", "orders", "get", "orders", Access.OWNER),
    RouteSpec("POST", "/api/v1/orders/{order_id}/pay", "orders", "pay", "orders", Access.OWNER),
    RouteSpec("POST", "/api/v1/orders/{order_id}/cancel", "orders", "cancel", "orders", Access.OWNER),
    RouteSpec(
        "GET", "/api/v1/admin/orders/{order_id}/journey", "admin", "order_journey", "orders", Access.ADMIN
    ),
)

# In the table's order; every group needs a quota (shop.settings).
LIMIT_GROUPS: tuple[str, ...] = tuple(dict.fromkeys(spec.limit for spec in ROUTES if spec.limit))

_Specs = dict[tuple[str, str], RouteSpec]


@functools.cache
def _specs_key() -> web.AppKey[_Specs]:
    from aiohttp import web

    return web.AppKey("route_specs", dict)


def add_routes(app: web.Application, handlers: Mapping[str, object]) -> None:
    """Registers every route of each context present in `handlers` ({context: routes object})."""
    specs: _Specs = app.get(_specs_key(), {})
    for spec in ROUTES:
        owner = handlers.get(spec.context)
        if owner is None:
            continue
        handler = getattr(owner, spec.handler)
        if spec.method == "GET":
            app.router.add_get(spec.path, handler)  # HEAD too
        else:
            app.router.add_route(spec.method, spec.path, handler)
        specs[(spec.method, spec.path)] = spec
    app[_specs_key()] = specs


def spec_of(request: web.Request) -> RouteSpec | None:
    """The table's entry for the route this request matched; None for health routes and 404/405."""
    info = request.match_info
    if info.http_exception is not None:
        return None
    resource = info.route.resource
    if resource is None:
        return None
    method = "GET" if request.method == "HEAD" else request.method
    specs: _Specs = request.app.get(_specs_key(), {})
    return specs.get((method, resource.canonical))
