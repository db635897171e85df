"""The one error shape of the API, and the one place where failures become HTTP answers.

`{"error": {"code": "snake_case_code", "message": "human text", "request_id": "..."}}`
"""

from __future__ import annotations

from collections.abc import Mapping

import dramatiq.errors
import pika.exceptions
import psycopg
import psycopg_pool
import redis.exceptions
from aiohttp import web

from shop.domain import auth as auth_rules
from shop.domain import idempotency
from shop.domain import orders as order_rules
from shop.domain import products as catalog_rules

# aiohttp's own exceptions (unknown route, wrong method, body too large, ...) carry only a status:
# these are the codes clients see for them.
STATUS_CODES: Mapping[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
    409: "conflict",
    411: "length_required",
    412: "precondition_failed",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    422: "unprocessable_entity",
    429: "too_many_requests",
    431: "request_header_fields_too_large",
    500: "internal_error",
    501: "not_implemented",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}

# Where the request id middleware leaves the id for everything downstream.
REQUEST_ID_KEY = web.RequestKey("request_id", str)

# Headers of aiohttp's exceptions that must survive the rewrite into the envelope.
KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate", "Location")


class ApiError(Exception):
    """A failure the client must hear about, with its HTTP status and stable code."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def error_body(code: str, message: str, request_id: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message, "request_id": request_id}}


def error_response(
    request: web.Request, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.json_response(
        error_body(code, message, request.get(REQUEST_ID_KEY, "")), status=status, headers=headers
    )


def from_http_exception(request: web.Request, exc: web.HTTPException) -> web.Response:
    """Rewrites one of aiohttp's own error answers into the API's envelope."""
    code = STATUS_CODES.get(exc.status, "client_error" if exc.status < 500 else "server_error")
    message = exc.reason
    if exc.status == 404:
        message = f"no route for {request.method} {request.path}"
    elif exc.status == 405:
        message = f"{request.method} is not allowed on {request.path}"
    elif exc.text and not exc.text.startswith(f"{exc.status}:"):
        message = exc.text
    headers = {h: exc.headers[h] for h in KEPT_HEADERS if h in exc.headers}
    return error_response(request, exc.status, code, message, headers)


# The HTTP status of each stable error code the domain's errors carry (`code` on every class):
# the one table for a rule broken here in the gateway and for a refusal an actor answered with.
# A code missing here is a 400.
ERROR_STATUS: Mapping[str, int] = {
    # auth
    auth_rules.InvalidEmail.code: 422,
    auth_rules.InvalidPassword.code: 422,
    auth_rules.InvalidCredentials.code: 401,
    auth_rules.EmailNotVerified.code: 403,
    auth_rules.TooManyLoginAttempts.code: 429,
    auth_rules.InvalidRefreshToken.code: 401,
    auth_rules.RefreshTokenReused.code: 401,
    # catalog
    catalog_rules.InvalidProduct.code: 422,
    catalog_rules.ProductNotFound.code: 404,  # and orders.OrderNotFound: the same "not_found"
    catalog_rules.DuplicateSku.code: 409,
    catalog_rules.VersionConflict.code: 412,
    catalog_rules.StockBelowReserved.code: 409,
    catalog_rules.InsufficientStock.code: 409,
    # idempotency
    idempotency.InvalidIdempotencyKey.code: 400,
    idempotency.IdempotencyKeyReused.code: 422,
    # orders
    order_rules.InvalidOrder.code: 422,
    order_rules.UnknownProduct.code: 422,
    order_rules.TooManyUnpaidOrders.code: 409,
    order_rules.InvalidTransition.code: 409,
    order_rules.StockNotReserved.code: 409,
    order_rules.OrderNotFound.code: 404,
}


def refused(code: str, message: str) -> ApiError:
    """The API's error for a rule broken elsewhere, known by its code: an actor's refusal
    (`shop.actors.commands.refusal`), or a placement's recorded one."""
    return ApiError(ERROR_STATUS.get(code, 400), code, message)


# Failures of a server the gateway depends on: the same request may well work in a moment, so they
# are a 503 with Retry-After naming the dependency, not a 500. (A query that PostgreSQL refuses for
# its content is no OperationalError; that stays a 500.)
DEPENDENCY_ERRORS: tuple[tuple[type[BaseException], str], ...] = (
    (psycopg.OperationalError, "PostgreSQL"),
    (psycopg_pool.PoolTimeout, "PostgreSQL"),
    (redis.exceptions.ConnectionError, "Redis"),
    (redis.exceptions.TimeoutError, "Redis"),
    (dramatiq.errors.BrokerConnectionError, "RabbitMQ"),
    (pika.exceptions.AMQPError, "RabbitMQ"),
)
RETRY_AFTER_DEPENDENCY = "1"


def dependency_of(exc: BaseException) -> str | None:
    """The name of the server whose failure `exc` is, or None when it is no such failure."""
    return next((name for cls, name in DEPENDENCY_ERRORS if isinstance(exc, cls)), None)


DomainError = (
    auth_rules.AuthRuleError
    | catalog_rules.CatalogError
    | order_rules.OrderRuleError
    | idempotency.IdempotencyError
)
# The same, for `except`.
DOMAIN_ERRORS = (
    auth_rules.AuthRuleError,
    catalog_rules.CatalogError,
    order_rules.OrderRuleError,
    idempotency.IdempotencyError,
)


def from_domain_error(request: web.Request, exc: DomainError) -> web.Response:
    status = ERROR_STATUS.get(exc.code, 400)
    headers = {}
    if isinstance(exc, auth_rules.TooManyLoginAttempts):
        headers["Retry-After"] = str(exc.retry_after)
    return error_response(request, status, exc.code, str(exc), headers)
