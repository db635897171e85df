"""Application factories: the gateway, and the small health app of every other process."""

from __future__ import annotations

from aiohttp import web

from shop.http.health import add_health_routes
from shop.http.middlewares import (
    body_limit_middleware,
    error_middleware,
    metrics_middleware,
    request_id_middleware,
)
from shop.http.openapi import openapi
from shop.observability.readiness import Readiness


def create_base_app(readiness: Readiness, max_body_bytes: int) -> web.Application:
    """Middlewares and health routes that every process's HTTP endpoint shares."""
    app = web.Application(
        middlewares=[
            request_id_middleware,
            metrics_middleware,
            error_middleware,
            body_limit_middleware(max_body_bytes),
        ],
        client_max_size=max_body_bytes,
    )
    add_health_routes(app, readiness)
    return app


def create_gateway_app(readiness: Readiness, max_body_bytes: int) -> web.Application:
    app = create_base_app(readiness, max_body_bytes)
    app.router.add_get("/api/v1/openapi.json", openapi)
    return app
