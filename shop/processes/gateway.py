"""`shop run gateway`: the aiohttp gateway."""

from __future__ import annotations

import logging

from aiohttp import web

from shop.bootstrap import DEPENDENCIES, build_readiness
from shop.http.app import create_gateway_app
from shop.http.middlewares import AccessLogger
from shop.settings import Settings

log = logging.getLogger("shop.gateway")


def run_gateway(settings: Settings, port: int | None = None) -> int:
    readiness, resources = build_readiness(settings, DEPENDENCIES)
    app = create_gateway_app(readiness, settings.max_body_bytes)

    async def close_resources(_: web.Application) -> None:
        await resources.close()

    listen_port = port or settings.gateway_port

    async def announce(_: web.Application) -> None:
        log.info("gateway: listening on http://%s:%d", settings.host, listen_port)

    app.on_startup.append(announce)
    app.on_cleanup.append(close_resources)
    web.run_app(
        app,
        host=settings.host,
        port=listen_port,
        access_log_class=AccessLogger,
        shutdown_timeout=10,
        print=None,
    )
    return 0
