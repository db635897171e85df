"""The OpenAPI 3.1 document served at `GET /api/v1/openapi.json`.

It lists the routes this build really serves, no more: each context adds its paths here when its
routes land, and a test checks that every documented path answers and every served route is
documented.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

import shop
from shop.http.routing import ROUTES

_ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_CHECKS = {
    "type": "object",
    "additionalProperties": {
        "type": "object",
        "required": ["status", "latency_ms"],
        "properties": {
            "status": {"enum": ["up", "down"]},
            "latency_ms": {"type": "number"},
            "error": {"type": "string"},
        },
    },
}


def _error(description: str) -> dict[str, Any]:
    return _json(_ERROR, description)


def _body(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    schema = {"type": "object", "required": required, "properties": properties}
    return {"required": True, "content": {"application/json": {"schema": schema}}}


_EMAIL = {"type": "string", "format": "email", "maxLength": 254}
_PASSWORD = {"type": "string", "minLength": 10, "maxLength": 128}
_BAD_BODY = {
    "400": _error("malformed JSON"),
    "413": _error("body over 1 MiB"),
    "415": _error("not application/json"),
    "422": _error("a field is missing or has the wrong type or shape"),
}
_SENT = _json({"type": "object", "properties": {"status": {"const": "verification_sent"}}}, "accepted")
_TOKENS = _json(
    {
        "type": "object",
        "required": ["access_token", "refresh_token", "token_type", "expires_in"],
        "properties": {
            "access_token": {"type": "string", "description": "JWT (EdDSA), typ at+jwt"},
            "refresh_token": {"type": "string"},
            "token_type": {"const": "Bearer"},
            "expires_in": {"type": "integer"},
        },
    },
    "a new token pair",
)
_REFRESH_BODY = _body({"refresh_token": {"type": "string"}}, ["refresh_token"])
_UNAUTHORIZED = _error("missing, malformed, expired or wrongly signed token (with WWW-Authenticate: Bearer)")

_AUTH_PATHS: dict[str, Any] = {
    "/api/v1/auth/register": {
        "post": {
            "summary": "Register; a verification code is emailed (a notice instead to a verified owner)",
            "operationId": "register",
            "requestBody": _body({"email": _EMAIL, "password": _PASSWORD}, ["email", "password"]),
            "responses": {"202": _SENT, **_BAD_BODY},
        }
    },
    "/api/v1/auth/verify": {
        "post": {
            "summary": "Verify the email address with the 6-digit code",
            "operationId": "verify",
            "requestBody": _body(
                {"email": _EMAIL, "code": {"type": "string", "pattern": "^[0-9]{6}$"}}, ["email", "code"]
            ),
            "responses": {
                "200": _json({"type": "object", "properties": {"status": {"const": "verified"}}}, "verified"),
                **_BAD_BODY,
                "400": _error("invalid_code: wrong, expired or burnt (5 wrong tries); or malformed JSON"),
                "503": _error("command_timeout: the verification did not answer in time; retry"),
            },
        }
    },
    "/api/v1/auth/resend": {
        "post": {
            "summary": "Send a new code (the old one stops working)",
            "operationId": "resend",
            "requestBody": _body({"email": _EMAIL}, ["email"]),
            "responses": {
                "202": _SENT,
                **_BAD_BODY,
                "429": _error("within 60 s of the last code; see Retry-After"),
            },
        }
    },
    "/api/v1/auth/login": {
        "post": {
            "summary": "Exchange email and password for a token pair",
            "operationId": "login",
            "requestBody": _body({"email": _EMAIL, "password": {"type": "string"}}, ["email", "password"]),
            "responses": {
                "200": _TOKENS,
                **_BAD_BODY,
                "401": _error("invalid_credentials: wrong email or password"),
                "403": _error("email_not_verified"),
                "429": _error("too_many_attempts: too many failed logins; see Retry-After"),
            },
        }
    },
    "/api/v1/auth/refresh": {
        "post": {
            "summary": "Rotate a refresh token; reusing a spent one revokes its whole family",
            "operationId": "refresh",
            "requestBody": _REFRESH_BODY,
            "responses": {
                "200": _TOKENS,
                **_BAD_BODY,
                "401": _error("invalid_refresh_token or refresh_token_reused"),
            },
        }
    },
    "/api/v1/auth/logout": {
        "post": {
            "summary": "Revoke the refresh token's family",
            "operationId": "logout",
            "requestBody": _REFRESH_BODY,
            "responses": {"204": {"description": "logged out"}, **_BAD_BODY},
        }
    },
    "/api/v1/auth/me": {
        "get": {
            "summary": "The caller's account",
            "operationId": "me",
            "security": [{"bearer": []}],
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "required": ["id", "email", "roles", "verified", "created_at"],
                        "properties": {
                            "id": {"type": "string", "format": "uuid"},
                            "email": _EMAIL,
                            "roles": {"type": "array", "items": {"type": "string"}},
                            "verified": {"type": "boolean"},
                            "created_at": {"type": "string", "format": "date-time"},
                        },
                    },
                    "the account",
                ),
                "401": _UNAUTHORIZED,
            },
        }
    },
    "/.well-known/jwks.json": {
        "get": {
            "summary": "Public keys that verify access tokens (Ed25519, EdDSA)",
            "operationId": "jwks",
            "responses": {"200": _json({"type": "object", "required": ["keys"]}, "a JWK set")},
        }
    },
}

_PRODUCT: dict[str, Any] = {
    "type": "object",
    "required": [
        "id",
        "sku",
        "name",
        "description",
        "price_cents",
        "currency",
        "stock_available",
        "version",
        "created_at",
        "updated_at",
    ],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "sku": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"},
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "description": {"type": "string", "maxLength": 5000},
        "price_cents": {"type": "integer", "minimum": 0},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "stock_available": {"type": "integer", "minimum": 0},
        "version": {"type": "integer", "minimum": 1},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
    },
}
_ONE_PRODUCT = _json(_PRODUCT, "the product (header ETag: its version)")
_PRODUCT_ID = [
    {"name": "product_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
]
_ADMIN = {"401": _UNAUTHORIZED, "403": _error("forbidden: admins only")}
_COMMAND_TIMEOUT = {"503": _error("command_timeout: the catalog did not answer in time; retry")}
_FIELDS = {k: _PRODUCT["properties"][k] for k in ("name", "description", "price_cents", "currency")}

_PRODUCT_PATHS: dict[str, Any] = {
    "/api/v1/products": {
        "get": {
            "summary": "List products in creation order, a page at a time",
            "operationId": "listProducts",
            "parameters": [
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
                },
                {
                    "name": "cursor",
                    "in": "query",
                    "schema": {"type": "string", "minLength": 1},
                    "description": "a next_cursor",
                },
            ],
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {
                            "items": {"type": "array", "items": _PRODUCT},
                            "next_cursor": {"type": ["string", "null"]},
                        },
                    },
                    "a page",
                ),
                "400": _error("invalid_cursor"),
                "422": _error("invalid_limit"),
            },
        },
        "post": {
            "summary": "Create a product (admin)",
            "operationId": "createProduct",
            "security": [{"bearer": []}],
            "requestBody": _body(
                {**_FIELDS, "sku": _PRODUCT["properties"]["sku"], "stock": {"type": "integer", "minimum": 0}},
                ["sku", "name", "price_cents", "currency"],
            ),
            "responses": {
                "201": _ONE_PRODUCT,
                **_BAD_BODY,
                **_ADMIN,
                "409": _error("duplicate_sku"),
                "422": _error("invalid_product or a malformed field"),
                **_COMMAND_TIMEOUT,
            },
        },
    },
    "/api/v1/products/{product_id}": {
        "parameters": _PRODUCT_ID,
        "get": {
            "summary": "One product",
            "operationId": "getProduct",
            "responses": {"200": _ONE_PRODUCT, "404": _error("not_found")},
        },
        "patch": {
            "summary": "Change some fields (admin); If-Match: the version being changed",
            "operationId": "patchProduct",
            "security": [{"bearer": []}],
            "parameters": [
                {"name": "If-Match", "in": "header", "required": True, "schema": {"type": "string"}}
            ],
            "requestBody": _body(_FIELDS, []),
            "responses": {
                "200": _ONE_PRODUCT,
                **_BAD_BODY,
                **_ADMIN,
                "404": _error("not_found"),
                "412": _error("version_conflict: the product changed since that version"),
                "428": _error("if_match_required"),
                **_COMMAND_TIMEOUT,
            },
        },
    },
    "/api/v1/products/{product_id}/stock": {
        "parameters": _PRODUCT_ID,
        "post": {
            "summary": "Restock (positive delta) or write off (negative) (admin)",
            "operationId": "adjustStock",
            "security": [{"bearer": []}],
            "requestBody": _body({"delta": {"type": "integer"}}, ["delta"]),
            "responses": {
                "200": _ONE_PRODUCT,
                **_BAD_BODY,
                **_ADMIN,
                "404": _error("not_found"),
                "409": _error("stock_below_reserved"),
                **_COMMAND_TIMEOUT,
            },
        },
    },
    "/api/v1/products/{product_id}/events": {
        "parameters": _PRODUCT_ID,
        "get": {
            "summary": "The product's event history, oldest first (admin)",
            "operationId": "productEvents",
            "security": [{"bearer": []}],
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {
                            "items": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["seq", "type", "data", "occurred_at"],
                                    "properties": {
                                        "seq": {"type": "integer"},
                                        "event_id": {"type": "string", "format": "uuid"},
                                        "version": {"type": "integer"},
                                        "type": {
                                            "enum": ["ProductCreated", "ProductUpdated", "StockAdjusted"]
                                        },
                                        "data": {"type": "object"},
                                        "occurred_at": {"type": "string", "format": "date-time"},
                                    },
                                },
                            }
                        },
                    },
                    "the history",
                ),
                **_ADMIN,
                "404": _error("not_found"),
            },
        },
    },
}

_ORDER: dict[str, Any] = {
    "type": "object",
    "required": [
        "id",
        "status",
        "stock",
        "cancel_reason",
        "items",
        "total_cents",
        "currency",
        "created_at",
        "paid_at",
        "expires_at",
        "updated_at",
    ],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "status": {"enum": ["PENDING", "PAID", "COMPLETED", "CANCELLED"]},
        "stock": {"enum": ["reserving", "reserved", "rejected"]},
        "cancel_reason": {"enum": ["customer_request", "out_of_stock", "payment_timeout", None]},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "product_id": {"type": "string", "format": "uuid"},
                    "quantity": {"type": "integer", "minimum": 1, "maximum": 1000},
                    "unit_price_cents": {"type": "integer", "minimum": 0},
                },
            },
        },
        "total_cents": {"type": "integer", "minimum": 0},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "created_at": {"type": "string", "format": "date-time"},
        "paid_at": {"type": ["string", "null"], "format": "date-time"},
        "expires_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
    },
}

_ORDER_ID = [
    {"name": "order_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
]

_ORDER_PATHS: dict[str, Any] = {
    "/api/v1/orders": {
        "post": {
            "summary": "Place an order (idempotent per Idempotency-Key)",
            "operationId": "placeOrder",
            "security": [{"bearer": []}],
            "parameters": [
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
                }
            ],
            "requestBody": _body(
                {
                    "items": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": 50,
                        "items": {
                            "type": "object",
                            "required": ["product_id", "quantity"],
                            "properties": {
                                "product_id": {"type": "string", "format": "uuid"},
                                "quantity": {"type": "integer", "minimum": 1, "maximum": 1000},
                            },
                        },
                    }
                },
                ["items"],
            ),
            "responses": {
                "201": _json(_ORDER, "the order (the same one again for the same key and body)"),
                "202": _json({"type": "object"}, "still processing; Location names the order"),
                **_BAD_BODY,
                "400": _error("missing or invalid Idempotency-Key, or malformed JSON"),
                "401": _UNAUTHORIZED,
                "409": _error("idempotency_key_in_flight"),
                "422": _error("invalid_order, unknown_product or idempotency_key_reused"),
            },
        },
        "get": {
            "summary": "The caller's orders, newest first",
            "operationId": "listOrders",
            "security": [{"bearer": []}],
            "parameters": [
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
                {"name": "cursor", "in": "query", "schema": {"type": "string", "minLength": 1}},
            ],
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {
                            "items": {"type": "array", "items": _ORDER},
                            "next_cursor": {"type": ["string", "null"]},
                        },
                    },
                    "a page",
                ),
                "400": _error("invalid_cursor"),
                "401": _UNAUTHORIZED,
                "422": _error("invalid_limit"),
            },
        },
    },
    "/api/v1/orders/{order_id}": {
        "parameters": _ORDER_ID,
        "get": {
            "summary": "One of the caller's orders",
            "operationId": "getOrder",
            "security": [{"bearer": []}],
            "responses": {
                "200": _json(_ORDER, "the order"),
                "401": _UNAUTHORIZED,
                "404": _error("not_found"),
            },
        },
    },
    "/api/v1/orders/{order_id}/pay": {
        "parameters": _ORDER_ID,
        "post": {
            "summary": "Pay a PENDING order whose stock is reserved; the same payment again is harmless",
            "operationId": "payOrder",
            "security": [{"bearer": []}],
            "requestBody": _body(
                {"payment_reference": {"type": "string", "minLength": 1, "maxLength": 255}},
                ["payment_reference"],
            ),
            "responses": {
                "200": _json(_ORDER, "the order, PAID"),
                **_BAD_BODY,
                "401": _UNAUTHORIZED,
                "404": _error("not_found"),
                "409": _error("stock_not_reserved (still reserving) or invalid_transition"),
                "503": _error("command_timeout"),
            },
        },
    },
    "/api/v1/orders/{order_id}/cancel": {
        "parameters": _ORDER_ID,
        "post": {
            "summary": "Cancel a PENDING order; its stock is released",
            "operationId": "cancelOrder",
            "security": [{"bearer": []}],
            "responses": {
                "200": _json(_ORDER, "the order, CANCELLED (customer_request)"),
                "401": _UNAUTHORIZED,
                "404": _error("not_found"),
                "409": _error("invalid_transition"),
                "503": _error("command_timeout"),
            },
        },
    },
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "shop",
        "version": shop.__version__,
        "description": "Event-driven e-commerce backend. Every error has the shape of `Error`; every "
        "response carries `X-Request-Id`.",
    },
    "servers": [{"url": "http://127.0.0.1:8080"}],
    "paths": {
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
                        {"type": "object", "properties": {"status": {"const": "ready"}, "checks": _CHECKS}},
                        "every dependency is up",
                    ),
                    "503": _json(
                        {
                            "type": "object",
                            "properties": {
                                "status": {"const": "not_ready"},
                                "checks": _CHECKS,
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
                "responses": {
                    "200": {"description": "Prometheus text format", "content": {"text/plain": {}}}
                },
            }
        },
        "/docs": {
            "get": {
                "summary": "This document as a reference page (Swagger UI, served from a pinned package)",
                "operationId": "docs",
                "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}},
            }
        },
        "/docs/static/{filename}": {
            "get": {
                "summary": "The reference page's scripts, styles and icon",
                "operationId": "docsAsset",
                "parameters": [
                    {"name": "filename", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {
                    "200": {"description": "the file", "content": {"*/*": {}}},
                    "404": _error("not_found: not one of the page's files"),
                },
            }
        },
        "/api/v1/openapi.json": {
            "get": {
                "summary": "This document",
                "operationId": "openapi",
                "responses": {"200": _json({"type": "object"}, "the OpenAPI document")},
            }
        },
        **_AUTH_PATHS,
        **_PRODUCT_PATHS,
        **_ORDER_PATHS,
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {
                        "type": "object",
                        "required": ["code", "message", "request_id"],
                        "properties": {
                            "code": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
                            "message": {"type": "string"},
                            "request_id": {"type": "string"},
                        },
                    }
                },
            }
        },
        "responses": {"Error": _json(_ERROR, "an error")},
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


def _add_rate_limits(document: dict[str, Any]) -> None:
    """Every rate-limited route of the routing table: the headers on each answer, 429, and for auth
    routes the 503 of a limiter that cannot decide."""
    for spec in ROUTES:
        operation = document["paths"][spec.path][spec.method.lower()]
        # Every route of the table refuses query parameters its operation does not list.
        operation["responses"].setdefault(
            "400", _error("unknown_parameter (a query parameter this route does not take) or bad_request")
        )
        if spec.limit is None:
            continue
        # Copies: response objects are shared between operations.
        operation["responses"] = {
            status: answer
            if "$ref" in answer
            else {**answer, "headers": {**answer.get("headers", {}), **_RATE_LIMIT_HEADERS}}
            for status, answer in operation["responses"].items()
        }
        operation["responses"]["429"] = {
            **_error(f"rate_limited: over the {spec.limit!r} quota for this client; see Retry-After"),
            "headers": {
                **_RATE_LIMIT_HEADERS,
                "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}},
            },
        }
        if spec.context == "auth":
            operation["responses"]["503"] = _error(
                "rate_limiter_unavailable (or another dependency away): auth is refused while the"
                " limiter cannot decide; retry"
            )


_add_rate_limits(DOCUMENT)


def _query_parameters(document: dict[str, Any]) -> dict[tuple[str, str], frozenset[str]]:
    """{(METHOD, path template): the query parameters the document allows}."""
    allowed: dict[tuple[str, str], frozenset[str]] = {}
    for path, item in document["paths"].items():
        shared = item.get("parameters", [])
        for method, operation in item.items():
            if method == "parameters":
                continue
            parameters = [*shared, *operation.get("parameters", [])]
            allowed[(method.upper(), path)] = frozenset(p["name"] for p in parameters if p["in"] == "query")
    return allowed


QUERY_PARAMETERS = _query_parameters(DOCUMENT)


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(DOCUMENT)
