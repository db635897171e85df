"""`shop run gateway`: the aiohttp gateway."""

from __future__ import annotations

from aiohttp import web

from shop.bootstrap import DEPENDENCIES, build_readiness
from shop.http.app import create_gateway_app
from shop.http.middlewares import AccessLogger
from shop.settings import Settings


def run_gateway(settings: Settings, port: int | None = None) -> int:
    readiness, resources = build_readiness(settings, DEPENDENCIES)
    app = create_gateway_app(readiness, settings.max_body_bytes)

    async def close_resources(_: web.Application) -> None:
        await resources.close()

    app.on_cleanup.append(close_resources)
    web.run_app(
        app,
        host=settings.host,
        port=port or settings.gateway_port,
        access_log_class=AccessLogger,
        shutdown_timeout=10,
        print=None,
    )
    return 0
