"""`GET /docs`: the API's reference page (Swagger UI) for the OpenAPI document, served from the pinned
`swagger-ui-py` package's own files: no CDN, so it works offline and nothing third-party runs in it."""

from __future__ import annotations

import importlib.resources
import mimetypes

from aiohttp import web

from shop.http.errors import ApiError

# The only files the page needs; nothing else from the package is reachable.
_ASSETS = ("swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "favicon-32x32.png")
_STATIC = importlib.resources.files("swagger_ui") / "static"

_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>shop API</title>
  <link rel="stylesheet" href="/docs/static/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/static/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/static/swagger-ui-bundle.js"></script>
  <script src="/docs/static/swagger-ui-standalone-preset.js"></script>
  <script>
    window.onload = () => {
      window.ui = SwaggerUIBundle({
        url: "/api/v1/openapi.json",
        dom_id: "#swagger-ui",
        presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
        layout: "StandaloneLayout",
      });
    };
  </script>
</body>
</html>
"""


class DocsRoutes:
    def __init__(self) -> None:
        # Read once: a few megabytes that never change while the process runs.
        self._assets = {name: (_STATIC / name).read_bytes() for name in _ASSETS}

    async def page(self, request: web.Request) -> web.Response:
        return web.Response(text=_PAGE, content_type="text/html", headers={"Cache-Control": "no-cache"})

    async def asset(self, request: web.Request) -> web.Response:
        name = request.match_info["filename"]
        body = self._assets.get(name)
        if body is None:
            raise ApiError(404, "not_found", f"no documentation asset {name!r}")
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return web.Response(
            body=body, content_type=content_type, headers={"Cache-Control": "public, max-age=86400"}
        )
