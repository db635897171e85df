"""Headers at the edge: what handlers see of the client's headers, and what every answer carries.

Inbound, `strip_headers_middleware` removes before any handler or middleware after it looks:
- hop-by-hop headers (RFC 9110 §7.6.1): `Connection`, every header it names, and `Keep-Alive`,
  `Proxy-Authorization`, `Proxy-Connection`, `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`. They
  describe the client's connection to us (aiohttp has already acted on them), not the request, and
  must never be passed on;
- internal headers (`X-Shop-*`) and headers that assert an identity (`X-User-Id`, `Remote-User`,
  ...). Nothing in front of the gateway sets them, so one arriving here came from the client; no
  handler or downstream service can be fooled by one. The caller's identity is the verified
  `Principal` on the request (`shop.http.auth`), never a header.

Outbound, `secure_headers` (an `on_response_prepare` hook, so error envelopes and aiohttp's own
answers get them too) hides the server's name and version, forbids MIME sniffing, and keeps auth
answers out of every cache.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler
from multidict import CIMultiDict

from shop.http.routing import spec_of

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authorization",
        "proxy-authenticate",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
IDENTITY_HEADERS = frozenset(
    {"x-user-id", "x-user-roles", "x-authenticated-user", "x-forwarded-user", "x-remote-user", "remote-user"}
)
INTERNAL_PREFIX = "x-shop-"


def _stripped_names(request: web.BaseRequest) -> frozenset[str]:
    """The lower-cased names of the headers to remove; usually none."""
    raw = request.headers
    named_by_connection = {
        token.strip().lower() for value in raw.getall("Connection", []) for token in value.split(",")
    }
    return frozenset(
        name.lower()
        for name in raw
        if name.lower() in HOP_BY_HOP
        or name.lower() in IDENTITY_HEADERS
        or name.lower().startswith(INTERNAL_PREFIX)
        or name.lower() in named_by_connection
    )


@web.middleware
async def strip_headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    stripped = _stripped_names(request)
    if stripped:
        request = request.clone(headers=_kept_headers(request, stripped))
    return await handler(request)


def _kept_headers(request: web.Request, stripped: frozenset[str]) -> CIMultiDict[str]:
    return CIMultiDict(
        (name, _encodable(value)) for name, value in request.headers.items() if name.lower() not in stripped
    )


def _encodable(value: str) -> str:
    """aiohttp keeps the bytes of a header that is not UTF-8 as lone surrogates ("\\udcff"), which
    clone() cannot encode again. Each becomes U+FFFD: as far from any valid value as the bytes were
    (an id, a token or a key with it is refused just the same), and the request goes on as it does
    when nothing is stripped."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return value


async def secure_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Server"] = "shop"  # never aiohttp's name and version
    response.headers["X-Content-Type-Options"] = "nosniff"
    spec = spec_of(request)
    if spec is not None and spec.context == "auth":
        # Tokens and account details must not sit in any cache between us and the client.
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
