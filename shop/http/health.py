"""`/healthz`, `/readyz` and `/metrics`: served by the gateway and by every other process."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from shop.http.errors import REQUEST_ID_KEY, error_body
from shop.observability.readiness import Readiness

READINESS_KEY = web.AppKey("readiness", Readiness)


async def healthz(request: web.Request) -> web.Response:
    """Alive: the event loop answers. Says nothing about dependencies, so a restart never helps a 503 here."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    results = await request.app[READINESS_KEY].run()
    checks = {r.name: r.as_json() for r in results}
    down = [r.name for r in results if not r.up]
    if not down:
        return web.json_response({"status": "ready", "checks": checks})
    body = {
        "status": "not_ready",
        "checks": checks,
        **error_body("not_ready", "down: " + ", ".join(down), request.get(REQUEST_ID_KEY, "")),
    }
    return web.json_response(body, status=503)


async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})


def add_health_routes(app: web.Application, readiness: Readiness) -> None:
    app[READINESS_KEY] = readiness
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
