"""The storefront: the pages a person shops with, served by the gateway from the package's own files
(`shop/web/`: one HTML page, ES modules and a stylesheet; no build step, nothing fetched from
elsewhere). The pages speak only the public API (`/api/v1/...`), like any other client.

Routes (context "gateway" in the routing table): `GET /` the page (its views are hash routes, so
the server has one page to serve and an unknown path keeps the API's 404 envelope), `GET
/assets/{filename}` its modules and stylesheet, `GET /storefront.json` what the page cannot learn
from the API (where development mail is read, the payment reminders' delays).

Every answer here carries a Content-Security-Policy without 'unsafe-inline': scripts, styles and
requests only from this origin, so even a product name that got into the page as markup could run
nothing. The API's routes keep their own headers (shop/http/headers.py)."""

from __future__ import annotations

import importlib.resources
import json
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web

from shop.http.errors import ApiError

_WEB = importlib.resources.files("shop") / "web"
# What a file of the page may be; anything else in the folder is not served.
_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
_PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    # Small files that change with the code: the browser asks again (a 304 costs nothing locally).
    "Cache-Control": "no-cache",
}


@dataclass(frozen=True)
class StorefrontConfig:
    """What `GET /storefront.json` tells the page."""

    # Mailpit's web page in development (SHOP_MAILPIT_URL); None: no link is shown.
    mailpit_url: str | None = None
    # The payment reminders' delays after placement, in seconds (SHOP_ORDER_REMINDERS): the order
    # page shows when each went or will go out.
    reminders: Sequence[float] = ()

    def as_json(self) -> dict[str, object]:
        return {"mailpit_url": self.mailpit_url, "reminders_s": list(self.reminders)}


def _files() -> dict[str, tuple[bytes, str]]:
    return {
        entry.name: (entry.read_bytes(), _TYPES[suffix])
        for entry in _WEB.iterdir()
        if entry.is_file() and (suffix := "." + entry.name.rpartition(".")[2]) in _TYPES
    }


class StorefrontRoutes:
    def __init__(self, config: StorefrontConfig) -> None:
        # Read once: a few dozen kilobytes that never change while the process runs.
        self._page = (_WEB / "index.html").read_bytes()
        self._assets = _files()
        self._config = json.dumps(config.as_json()).encode()

    async def page(self, request: web.Request) -> web.Response:
        return web.Response(body=self._page, content_type="text/html", charset="utf-8", headers=_PAGE_HEADERS)

    async def asset(self, request: web.Request) -> web.Response:
        name = request.match_info["filename"]
        found = self._assets.get(name)
        if found is None:
            raise ApiError(404, "not_found", f"no storefront file {name!r}")
        body, content_type = found
        charset = None if content_type.startswith("image/") else "utf-8"
        return web.Response(body=body, content_type=content_type, charset=charset, headers=_PAGE_HEADERS)

    async def config(self, request: web.Request) -> web.Response:
        return web.Response(
            body=self._config, content_type="application/json", headers={"Cache-Control": "no-cache"}
        )
