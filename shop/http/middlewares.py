"""Middlewares shared by the gateway and every process's health endpoint.

Order (outermost first): request id, tracing, metrics, errors, body limit. The request id wraps
everything so even a rewritten error carries `X-Request-Id`; the server span covers all the rest;
metrics sit outside the error rewrite so they count the status the client really got.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.typedefs import Handler, Middleware
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import Counter, Gauge, Histogram

from shop.http.errors import (
    DOMAIN_ERRORS,
    REQUEST_ID_KEY,
    RETRY_AFTER_DEPENDENCY,
    ApiError,
    dependency_of,
    error_response,
    from_domain_error,
    from_http_exception,
)
from shop.http.routing import spec_of
from shop.observability.tracing import extract, tracer, traceresponse

log = logging.getLogger("shop.http")

REQUEST_ID_HEADER = "X-Request-Id"
# A client's id is echoed only when it is short and made of visible, header-safe characters.
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")

DEPENDENCY_FAILURES = Counter(
    "shop_gateway_dependency_unavailable_total",
    "Requests answered 503 because a server the gateway depends on failed (PostgreSQL, Redis, RabbitMQ)",
    ["dependency"],
)
for _name in ("PostgreSQL", "Redis", "RabbitMQ"):
    DEPENDENCY_FAILURES.labels(_name)  # every series exists at 0 from the start
HTTP_REQUESTS = Counter(
    "shop_http_requests_total", "HTTP requests answered", ["method", "route", "status", "context"]
)
HTTP_LATENCY = Histogram(
    "shop_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route", "status", "context"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
HTTP_IN_FLIGHT = Gauge("shop_http_requests_in_flight", "HTTP requests being answered now")


def new_request_id() -> str:
    return uuid.uuid4().hex


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    offered = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = offered if _SANE_REQUEST_ID.match(offered) else new_request_id()
    request[REQUEST_ID_KEY] = request_id
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # a redirect or anything the error middleware let through
        exc.headers[REQUEST_ID_HEADER] = request_id
        raise
    response.headers[REQUEST_ID_HEADER] = request_id
    return response


# Probes and scrapes: a span each every few seconds would bury the traces that matter.
_UNTRACED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_QUIET_PATHS = frozenset({"/healthz", "/metrics"})  # not logged when they answer 200


@web.middleware
async def tracing_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The request's server span, child of the caller's `traceparent` if it sent one; the answer
    names it in `traceresponse` (W3C Trace Context Level 2), so a client can look the trace up."""
    if request.path in _UNTRACED_PATHS:
        return await handler(request)
    route = _route_label(request)
    span = tracer().start_span(
        f"{request.method} {route}",
        context=extract(request.headers),
        kind=SpanKind.SERVER,
        attributes={
            "http.request.method": request.method,
            "http.route": route,
            "url.path": request.path,
            "shop.request_id": request.get(REQUEST_ID_KEY, ""),
        },
    )
    token = otel_context.attach(trace.set_span_in_context(span))
    status = 500
    try:
        response = await handler(request)
        status = response.status
    except web.HTTPException as exc:
        status = exc.status
        _name_trace(exc, span)
        raise
    except BaseException as exc:
        span.record_exception(exc)
        raise
    finally:
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        span.end()
        otel_context.detach(token)
    _name_trace(response, span)
    return response


def _name_trace(response: web.StreamResponse | web.HTTPException, span: trace.Span) -> None:
    value = traceresponse(span)
    if value is not None:
        response.headers["traceresponse"] = value


def _route_label(request: web.Request) -> str:
    # The route's template, never the raw path: ids in paths would explode the label set.
    info = request.match_info
    resource = info.route.resource if info.http_exception is None else None
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    HTTP_IN_FLIGHT.inc()
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        HTTP_IN_FLIGHT.dec()
        route = _route_label(request)
        spec = spec_of(request)
        # The routing table's context; "process" for health, metrics and unmatched requests.
        context = spec.context if spec is not None else "process"
        labels = (request.method, route, str(status), context)
        HTTP_REQUESTS.labels(*labels).inc()
        HTTP_LATENCY.labels(*labels).observe(time.perf_counter() - started)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(request, exc.status, exc.code, exc.message, exc.headers)
    except DOMAIN_ERRORS as exc:
        return from_domain_error(request, exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return from_http_exception(request, exc)
    except Exception as exc:
        trace.get_current_span().record_exception(exc)
        dependency = dependency_of(exc)
        if dependency is not None:
            DEPENDENCY_FAILURES.labels(dependency).inc()
            log.warning(
                "%s %s: %s unavailable (%s: %s)",
                request.method,
                request.path,
                dependency,
                type(exc).__name__,
                str(exc).splitlines()[0] if str(exc) else "",
                extra={"request_id": request.get(REQUEST_ID_KEY)},
            )
            return error_response(
                request,
                503,
                "service_unavailable",
                f"{dependency} is unavailable for a moment; retry",
                {"Retry-After": RETRY_AFTER_DEPENDENCY},
            )
        log.exception(
            "unhandled error on %s %s",
            request.method,
            request.path,
            extra={"request_id": request.get(REQUEST_ID_KEY)},
        )
        return error_response(request, 500, "internal_error", "the server failed to answer this request")


def body_limit_middleware(max_bytes: int) -> Middleware:
    """Refuses a declared body over the limit before reading a byte of it. Bodies without a
    Content-Length (chunked) are held to the same limit by aiohttp's `client_max_size` on read."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.content_length is not None and request.content_length > max_bytes:
            message = f"request body is {request.content_length} bytes; the limit is {max_bytes}"
            raise ApiError(413, "payload_too_large", message)
        return await handler(request)

    return middleware


# Request headers, all of them together. The HTTP parser itself refuses a single line over
# HTTP_LINE_LIMIT with a plain-text 400 before any of this code runs; below that, this limit answers
# in the error envelope.
MAX_HEADER_BYTES = 16 * 1024
HTTP_LINE_LIMIT = 64 * 1024


@web.middleware
async def header_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    size = sum(len(name) + len(value) + 4 for name, value in request.raw_headers)
    if size > MAX_HEADER_BYTES:
        raise ApiError(
            431,
            "request_header_fields_too_large",
            f"request headers are {size} bytes; the limit is {MAX_HEADER_BYTES}",
        )
    return await handler(request)


class AccessLogger(AbstractAccessLogger):
    """One line per answered request, with the request id to join it to the rest of the logs."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if response.status == 200 and request.path in _QUIET_PATHS:
            return  # health checks and scrapes every few seconds would drown the lines that matter
        self.logger.info(
            "%s %s %s %.1fms",
            request.method,
            request.path_qs,
            response.status,
            time * 1000,
            extra={
                "request_id": response.headers.get(REQUEST_ID_HEADER),
                "method": request.method,
                "path": request.path,
                "status": response.status,
                "duration_ms": round(time * 1000, 2),
                "remote": request.remote,
            },
        )
