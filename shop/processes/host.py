"""Hosting a background service (dramatiq workers, stream agents, the relay) beside its own
`/healthz`, `/readyz` and `/metrics` endpoint, with a clean stop on SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Protocol

from aiohttp import web

from shop.bootstrap import Resources
from shop.http.middlewares import AccessLogger

log = logging.getLogger("shop.process")


class Service(Protocol):
    """Work that runs on its own threads: `start` returns at once, `stop` returns when it is done."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def alive(self) -> bool: ...


async def _serve(
    name: str, service: Service, app: web.Application, host: str, port: int, resources: Resources
) -> int:
    runner = web.AppRunner(app, access_log_class=AccessLogger)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("%s: health and metrics on http://%s:%d", name, host, port)

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)

    await asyncio.to_thread(service.start)
    exit_code = 0
    while not stopping.is_set():
        try:
            await asyncio.wait_for(stopping.wait(), timeout=1.0)
        except TimeoutError:
            if not service.alive():
                # Exiting lets the supervisor (or the orchestrator) restart us with a clean slate.
                log.error("%s: service stopped on its own; exiting", name)
                exit_code = 1
                break
    log.info("%s: stopping", name)
    await asyncio.to_thread(service.stop)
    await runner.cleanup()
    await resources.close()
    log.info("%s: stopped", name)
    return exit_code


def run_service(
    name: str, service: Service, app: web.Application, host: str, port: int, resources: Resources
) -> int:
    return asyncio.run(_serve(name, service, app, host, port, resources))
