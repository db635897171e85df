"""The OpenAPI 3.1 document served at `GET /api/v1/openapi.json`, built from the routing table.

Each route of `routing.ROUTES` gets its operation from `_OPERATIONS` (summary, body, answers); what
the table already says is not written twice but derived from it: the bearer security and the
401/403/404 of its access level, the path parameters of its template, the rate-limit headers and
429 of its limit group. The request schemas come from `schemas.py`, and `validation.py` compiles
its validators from this very document, so what it promises is what the gateway enforces.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from aiohttp import web

import shop
from shop.http import schemas
from shop.http.middlewares import MAX_HEADER_BYTES
from shop.http.routing import ROUTES, Access, RouteSpec

_ERROR_REF = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ERROR_REF, description)


def _request(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


_BAD_BODY = {
    "400": _error("malformed_json"),
    "413": _error("payload_too_large: body over 1 MiB"),
    "415": _error("unsupported_media_type: not application/json"),
    "422": _error("missing_field, invalid_field or invalid_body: the body breaks its schema"),
}
_SENT = _json({"type": "object", "properties": {"status": {"const": "verification_sent"}}}, "accepted")
_TOKENS = _json(schemas.TOKENS, "a new token pair (Cache-Control: no-store)")
_ONE_PRODUCT = _json(schemas.PRODUCT, "the product (header ETag: its version)")
_ONE_ORDER = _json(schemas.ORDER, "the order")
_PROCESSING = schemas.answer({"status": {"const": "processing"}, "placement_id": schemas.UUID})
_COMMAND_TIMEOUT = {"503": _error("command_timeout: the command did not answer in time; retry")}


def _pages(summary: str, operation_id: str, item: dict[str, Any]) -> dict[str, Any]:
    """A list read a page at a time: `limit` and `cursor`, and a page of `item`s with its next cursor."""
    return {
        "summary": summary,
        "operationId": operation_id,
        "parameters": schemas.PAGE_PARAMETERS,
        "responses": {
            "200": _json(schemas.page_of(item), "a page"),
            "400": _error("invalid_cursor: not a next_cursor of this API"),
            "422": _error("invalid_limit: limit out of 1..100"),
        },
    }


# {(METHOD, path template): the operation, less what the routing table implies}
_OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", "/api/v1/openapi.json"): {
        "summary": "This document",
        "operationId": "openapi",
        "responses": {"200": _json({"type": "object"}, "the OpenAPI document")},
    },
    ("GET", "/.well-known/jwks.json"): {
        "summary": "Public keys that verify access tokens (Ed25519, EdDSA)",
        "operationId": "jwks",
        "responses": {"200": _json({"type": "object", "required": ["keys"]}, "a JWK set")},
    },
    ("GET", "/docs"): {
        "summary": "This document as a reference page (Swagger UI, served from a pinned package)",
        "operationId": "docs",
        "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}},
    },
    ("GET", "/docs/static/{filename}"): {
        "summary": "The reference page's scripts, styles and icon",
        "operationId": "docsAsset",
        "responses": {
            "200": {"description": "the file", "content": {"*/*": {}}},
            "404": _error("not_found: not one of the page's files"),
        },
    },
    ("GET", "/"): {
        "summary": "The storefront: the shop's pages for a person (views are hash routes: /#/cart, ...)",
        "operationId": "storefront",
        "responses": {
            "200": {
                "description": "HTML (Content-Security-Policy: 'self' only)",
                "content": {"text/html": {}},
            }
        },
    },
    ("GET", "/assets/{filename}"): {
        "summary": "The storefront's modules and stylesheet",
        "operationId": "storefrontAsset",
        "responses": {
            "200": {"description": "the file", "content": {"*/*": {}}},
            "404": _error("not_found: not one of the storefront's files"),
        },
    },
    ("GET", "/storefront.json"): {
        "summary": "What the storefront's page is told: Mailpit's page in development, the reminders' delays",
        "operationId": "storefrontConfig",
        "responses": {"200": _json(schemas.STOREFRONT_CONFIG, "the page's settings")},
    },
    # --- auth ---
    ("POST", "/api/v1/auth/register"): {
        "summary": "Register; a verification code is emailed (a notice instead to a verified owner)",
        "operationId": "register",
        "requestBody": _request(schemas.REGISTER),
        "responses": {
            "202": _SENT,
            **_BAD_BODY,
            "422": _error("invalid_email, invalid_password, or a body that breaks its schema"),
        },
    },
    ("POST", "/api/v1/auth/verify"): {
        "summary": "Verify the email address with the 6-digit code",
        "operationId": "verify",
        "requestBody": _request(schemas.VERIFY),
        "responses": {
            "200": _json({"type": "object", "properties": {"status": {"const": "verified"}}}, "verified"),
            **_BAD_BODY,
            "400": _error(
                "invalid_code: wrong, expired or burnt (5 wrong tries); password_required: the right"
                " code, but the address was registered more than once with different passwords, so"
                " the password the account is to have must come with it; or malformed_json"
            ),
            "503": _error("command_timeout: the verification did not answer in time; retry"),
        },
    },
    ("POST", "/api/v1/auth/resend"): {
        "summary": "Send a new code (the old one stops working)",
        "operationId": "resend",
        "requestBody": _request(schemas.RESEND),
        "responses": {
            "202": _SENT,
            **_BAD_BODY,
            "422": _error("invalid_email, or a body that breaks its schema"),
            "429": _error("resend_too_soon: within 60 s of the last code; see Retry-After"),
        },
    },
    ("POST", "/api/v1/auth/login"): {
        "summary": "Exchange email and password for a token pair",
        "operationId": "login",
        "requestBody": _request(schemas.LOGIN),
        "responses": {
            "200": _TOKENS,
            **_BAD_BODY,
            "401": _error("invalid_credentials: wrong email or password"),
            "403": _error("email_not_verified"),
            "429": _error("too_many_attempts: too many failed logins; see Retry-After"),
        },
    },
    ("POST", "/api/v1/auth/refresh"): {
        "summary": "Rotate a refresh token; reusing a spent one revokes its whole family",
        "operationId": "refresh",
        "requestBody": _request(schemas.REFRESH),
        "responses": {
            "200": _TOKENS,
            **_BAD_BODY,
            "401": _error("invalid_refresh_token or refresh_token_reused"),
        },
    },
    ("POST", "/api/v1/auth/logout"): {
        "summary": "Revoke the refresh token's family",
        "operationId": "logout",
        "requestBody": _request(schemas.REFRESH),
        "responses": {"204": {"description": "logged out"}, **_BAD_BODY},
    },
    ("GET", "/api/v1/auth/me"): {
        "summary": "The caller's account",
        "operationId": "me",
        "responses": {"200": _json(schemas.ACCOUNT, "the account")},
    },
    # --- products ---
    ("GET", "/api/v1/products"): _pages(
        "List products in creation order, a page at a time", "listProducts", schemas.PRODUCT
    ),
    ("POST", "/api/v1/products"): {
        "summary": "Create a product (admin)",
        "operationId": "createProduct",
        "parameters": [schemas.OPTIONAL_IDEMPOTENCY_KEY],
        "requestBody": _request(schemas.CREATE_PRODUCT),
        "responses": {
            "201": _ONE_PRODUCT,
            **_BAD_BODY,
            "400": _error("invalid_idempotency_key, or malformed_json"),
            "409": _error("duplicate_sku, or idempotency_key_in_flight"),
            "422": _error(
                "invalid_product, a field of the wrong type (invalid_field), or idempotency_key_reused"
            ),
            **_COMMAND_TIMEOUT,
        },
    },
    ("GET", "/api/v1/products/{product_id}"): {
        "summary": "One product",
        "operationId": "getProduct",
        "responses": {"200": _ONE_PRODUCT, "404": _error("not_found")},
    },
    ("PATCH", "/api/v1/products/{product_id}"): {
        "summary": "Change some fields (admin); If-Match: the version being changed",
        "operationId": "patchProduct",
        "parameters": [schemas.IF_MATCH, schemas.OPTIONAL_IDEMPOTENCY_KEY],
        "requestBody": _request(schemas.PATCH_PRODUCT),
        "responses": {
            "200": _ONE_PRODUCT,
            **_BAD_BODY,
            "400": _error("invalid_if_match, or malformed_json"),
            "404": _error("not_found"),
            "412": _error("version_conflict: the product changed since that version"),
            "422": _error("invalid_product, or a field of the wrong type (invalid_field)"),
            "428": _error("if_match_required"),
            **_COMMAND_TIMEOUT,
        },
    },
    ("POST", "/api/v1/products/{product_id}/stock"): {
        "summary": "Restock (positive delta) or write off (negative) (admin)",
        "operationId": "adjustStock",
        "parameters": [schemas.IDEMPOTENCY_KEY],
        "requestBody": _request(schemas.ADJUST_STOCK),
        "responses": {
            "200": _ONE_PRODUCT,
            **_BAD_BODY,
            "400": _error("invalid_idempotency_key (missing or invalid), or malformed_json"),
            "404": _error("not_found"),
            "409": _error("stock_below_reserved, or idempotency_key_in_flight"),
            "422": _error(
                "invalid_product (delta 0 or out of range), missing_field, invalid_field or"
                " idempotency_key_reused"
            ),
            **_COMMAND_TIMEOUT,
        },
    },
    ("GET", "/api/v1/products/{product_id}/events"): {
        "summary": "The product's event history, oldest first (admin)",
        "operationId": "productEvents",
        "responses": {"200": _json(schemas.PRODUCT_EVENTS, "the history"), "404": _error("not_found")},
    },
    # --- orders ---
    ("POST", "/api/v1/orders"): {
        "summary": "Place an order (idempotent per Idempotency-Key)",
        "operationId": "placeOrder",
        "parameters": [schemas.IDEMPOTENCY_KEY, schemas.PREFER_WAIT],
        "requestBody": _request(schemas.PLACE_ORDER),
        "responses": {
            "201": _json(schemas.ORDER, "the order (the same one again for the same key and body)"),
            "202": _json(
                _PROCESSING,
                "still processing; Location (and Retry-After) names the placement, which leads to the"
                " order or to the refusal",
            ),
            **_BAD_BODY,
            "400": _error("invalid_idempotency_key (missing or invalid), or malformed_json"),
            "409": _error("idempotency_key_in_flight, or too_many_unpaid_orders"),
            "422": _error("invalid_order, unknown_product or idempotency_key_reused"),
        },
    },
    ("GET", "/api/v1/orders/placements/{placement_id}"): {
        "summary": "What became of a placement answered 202 (its Location)",
        "operationId": "getPlacement",
        "responses": {
            "200": _json(_PROCESSING, "no outcome yet: still processing (see Retry-After)"),
            "303": _json(
                {
                    "type": "object",
                    "required": ["status", "order_id"],
                    "properties": {"status": {"const": "placed"}, "order_id": schemas.UUID},
                },
                "placed: Location is the order",
            ),
            "409": _error("too_many_unpaid_orders: the placement was refused"),
            "422": _error("unknown_product or invalid_order: the placement was refused"),
        },
    },
    ("GET", "/api/v1/orders"): _pages("The caller's orders, newest first", "listOrders", schemas.ORDER),
    ("GET", "/api/v1/orders/{order_id}"): {
        "summary": "One of the caller's orders",
        "operationId": "getOrder",
        "parameters": [schemas.PREFER_WAIT],
        "responses": {"200": _ONE_ORDER},
    },
    ("POST", "/api/v1/orders/{order_id}/pay"): {
        "summary": "Pay a PENDING order whose stock is reserved; the same payment again is harmless",
        "operationId": "payOrder",
        "requestBody": _request(schemas.PAY_ORDER),
        "responses": {
            "200": _json(schemas.ORDER, "the order, PAID"),
            **_BAD_BODY,
            "409": _error("stock_not_reserved (still reserving) or invalid_transition"),
            **_COMMAND_TIMEOUT,
        },
    },
    ("POST", "/api/v1/orders/{order_id}/cancel"): {
        "summary": "Cancel a PENDING order; its stock is released",
        "operationId": "cancelOrder",
        "responses": {
            "200": _json(schemas.ORDER, "the order, CANCELLED (customer_request)"),
            "409": _error("invalid_transition"),
            **_COMMAND_TIMEOUT,
        },
    },
    # --- admin ---
    ("GET", "/api/v1/admin/orders/{order_id}/journey"): {
        "summary": "An order's journey (admin): its trace from the trace store, and its events",
        "operationId": "orderJourney",
        "responses": {
            "200": _json(
                schemas.ORDER_JOURNEY,
                "the order's spans (none, with the reason, when the trace store holds no trace) and events",
            ),
            "404": _error("not_found"),
            "503": _error(
                "tracing_not_configured: no trace store (SHOP_TRACE_QUERY_URL); or service_unavailable"
            ),
        },
    },
}

# Served by every process next to its own routes (shop/http/health.py), so not in the table.
_PROCESS_PATHS: dict[str, Any] = {
    "/healthz": {
        "get": {
            "summary": "Liveness: the process answers",
            "operationId": "healthz",
            "responses": {
                "200": _json({"type": "object", "properties": {"status": {"const": "ok"}}}, "alive")
            },
        }
    },
    "/readyz": {
        "get": {
            "summary": "Readiness: every dependency answers",
            "operationId": "readyz",
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {"status": {"const": "ready"}, "checks": schemas.CHECKS},
                    },
                    "every dependency is up",
                ),
                "503": _json(
                    {
                        "type": "object",
                        "properties": {
                            "status": {"const": "not_ready"},
                            "checks": schemas.CHECKS,
                            "error": {"$ref": "#/components/schemas/Error/properties/error"},
                        },
                    },
                    "at least one dependency is down; `error.message` names them",
                ),
            },
        }
    },
    "/metrics": {
        "get": {
            "summary": "Prometheus metrics",
            "operationId": "metrics",
            "responses": {"200": {"description": "Prometheus text format", "content": {"text/plain": {}}}},
        }
    },
}

_RATE_LIMIT_HEADERS = {
    "RateLimit-Policy": {
        "description": 'IETF draft: the group\'s quota and window, e.g. "orders";q=60;w=60',
        "schema": {"type": "string"},
    },
    "RateLimit": {
        "description": "IETF draft: requests left and seconds until the whole quota is back,"
        ' e.g. "orders";r=41;t=17',
        "schema": {"type": "string"},
    },
}
_UNAUTHORIZED = _error("missing, malformed, expired or wrongly signed token (with WWW-Authenticate: Bearer)")
_TEMPLATE_PARAMETER = re.compile(r"{(\w+)}")


def _path_parameters(path: str) -> list[dict[str, Any]]:
    parameters = []
    for name in _TEMPLATE_PARAMETER.findall(path):
        known = schemas.PATH_PARAMETERS.get(name)
        parameters.append(
            known or {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        )
    return parameters


def _operation(spec: RouteSpec) -> dict[str, Any]:
    operation = copy.deepcopy(_OPERATIONS[(spec.method, spec.path)])
    operation["parameters"] = _path_parameters(spec.path) + operation.get("parameters", [])
    if not operation["parameters"]:
        del operation["parameters"]
    answers: dict[str, Any] = operation["responses"]
    answers.setdefault(
        "400",
        _error(
            "unknown_parameter (a query parameter this route does not take), duplicate_parameter (one"
            " given twice) or bad_request"
        ),
    )
    if spec.access is not Access.ANYONE:
        operation["security"] = [{"bearer": []}]
        answers["401"] = _UNAUTHORIZED
    if spec.access is Access.ADMIN:
        answers["403"] = _error("forbidden: admins only")
    if spec.access is Access.OWNER:
        answers["404"] = _error("not_found: no such resource, or not the caller's")
    if spec.limit is not None:
        for answer in answers.values():
            answer["headers"] = {**answer.get("headers", {}), **_RATE_LIMIT_HEADERS}
        answers["429"] = {
            **_error(f"rate_limited: over the {spec.limit!r} quota for this client; see Retry-After"),
            "headers": {
                **_RATE_LIMIT_HEADERS,
                "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}},
            },
        }
        if spec.context == "auth":
            answers["503"] = _error(
                "rate_limiter_unavailable (or another dependency away): auth is refused while the"
                " limiter cannot decide; retry"
            )
    answers.setdefault(
        "431",
        _error(f"request_header_fields_too_large: headers over {MAX_HEADER_BYTES // 1024} KiB in all"),
    )
    answers.setdefault(
        "503",
        _error(
            "service_unavailable: PostgreSQL, Redis or RabbitMQ is unavailable for a moment; see Retry-After"
        ),
    )
    operation["responses"] = dict(sorted(answers.items()))
    return operation


def build_document() -> dict[str, Any]:
    missing = {(s.method, s.path) for s in ROUTES} ^ set(_OPERATIONS)
    if missing:
        raise RuntimeError(f"routes and operations disagree: {sorted(missing)}")
    paths: dict[str, dict[str, Any]] = copy.deepcopy(_PROCESS_PATHS)
    for spec in ROUTES:
        paths.setdefault(spec.path, {})[spec.method.lower()] = _operation(spec)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "shop",
            "version": shop.__version__,
            "description": "Event-driven e-commerce backend. Every error has the shape of `Error`; every "
            "response carries `X-Request-Id`. Request bodies and parameters are checked against the "
            "schemas below before any handler runs; `x-error-code` and `x-error-status` on a schema "
            "name the error a value that breaks it gets.",
        },
        "servers": [{"url": "http://127.0.0.1:8080"}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "schemas": {"Error": schemas.ERROR, "JsonWithoutNul": schemas.JSON_WITHOUT_NUL},
            "responses": {"Error": _json(_ERROR_REF, "an error")},
        },
    }


DOCUMENT = build_document()


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(DOCUMENT)
