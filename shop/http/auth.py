"""Who is calling: bearer access tokens at the gateway, and the JWKS that lets others check them.

`identity_middleware` leaves the verifier on the request; the routing table's access level makes the
contract middleware ask `require_principal` / `require_admin`, which verify the token once per
request and inject the caller as `request[PRINCIPAL_KEY]`. Public routes never pay for a signature
check. Identity headers a client may have forged never get this far (`shop.http.headers`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from uuid import UUID

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from shop.http.errors import ApiError
from shop.security.keys import KeyRing
from shop.security.tokens import InvalidToken, TokenExpired, TokenVerifier

ADMIN_ROLE = "admin"
REALM = "shop"

# RFC 6750 §2.1: the scheme is case-insensitive; one token of b64token characters follows.
_BEARER = re.compile(r"^[Bb][Ee][Aa][Rr][Ee][Rr] +([A-Za-z0-9\-._~+/]+=*) *$")
_SCHEME = re.compile(r"^\s*([A-Za-z0-9!#$%&'*+.^_`|~-]+)")


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of this request."""

    user_id: UUID
    roles: frozenset[str]
    email: str | None = None

    def is_admin(self) -> bool:
        return ADMIN_ROLE in self.roles


PRINCIPAL_KEY = web.RequestKey("principal", Principal)
_VERIFIER_KEY = web.RequestKey("token_verifier", TokenVerifier)


def identity_middleware(verifier: TokenVerifier) -> Middleware:
    """Place it inside `error_middleware`: the 401/403s of `require_principal`/`require_admin` then
    get the envelope."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        request[_VERIFIER_KEY] = verifier
        return await handler(request)

    return middleware


def require_principal(request: web.Request) -> Principal:
    """The caller, from `Authorization: Bearer <access token>`; else a 401 `ApiError`."""
    if PRINCIPAL_KEY in request:
        return request[PRINCIPAL_KEY]
    if _VERIFIER_KEY not in request:
        # Failing closed: a route asking for a caller on an app without the middleware is a bug.
        raise RuntimeError("identity_middleware is not installed on this application")
    verifier = request[_VERIFIER_KEY]
    authorizations = request.headers.getall("Authorization", [])
    if not authorizations:
        raise _unauthorized()
    if len(authorizations) > 1:
        raise _invalid_token("invalid_token", "more than one Authorization header")
    match = _BEARER.match(authorizations[0])
    if match is None:
        scheme = _SCHEME.match(authorizations[0])
        if scheme is not None and scheme[1].lower() != "bearer":
            # Another scheme (Basic, ...) is no bearer credential at all: the plain challenge.
            raise _unauthorized()
        raise _invalid_token("invalid_token", "the Authorization header is not 'Bearer <token>'")
    try:
        claims = verifier.verify(match[1])
    except TokenExpired:
        raise _invalid_token("token_expired", "the access token has expired") from None
    except InvalidToken as exc:
        raise _invalid_token("invalid_token", f"the access token is invalid: {exc.reason}") from None
    principal = Principal(user_id=claims.user_id, roles=frozenset(claims.roles), email=claims.email)
    request[PRINCIPAL_KEY] = principal
    return principal


def optional_principal(request: web.Request) -> Principal | None:
    """The caller if the request carries credentials (which must then be valid), else None."""
    if PRINCIPAL_KEY not in request and "Authorization" not in request.headers:
        return None
    return require_principal(request)


def require_admin(request: web.Request) -> Principal:
    """The caller if they hold the admin role; 401 without a valid token, 403 with another role."""
    principal = require_principal(request)
    if not principal.is_admin():
        raise ApiError(
            403,
            "forbidden",
            "this needs the admin role",
            headers={"WWW-Authenticate": f'Bearer realm="{REALM}", error="insufficient_scope"'},
        )
    return principal


def _unauthorized() -> ApiError:
    # RFC 6750 §3.1: a request without credentials gets the challenge and no error code.
    return ApiError(
        401,
        "unauthorized",
        "this needs an access token: Authorization: Bearer <token>",
        headers={"WWW-Authenticate": f'Bearer realm="{REALM}"'},
    )


def _invalid_token(code: str, message: str) -> ApiError:
    # Quotes and backslashes would break the quoted-string of the challenge; reasons are ours anyway.
    description = re.sub(r'["\\]', "'", message)
    challenge = f'Bearer realm="{REALM}", error="invalid_token", error_description="{description}"'
    return ApiError(401, code, message, headers={"WWW-Authenticate": challenge})


def jwks_handler(keyring: KeyRing) -> Handler:
    """`GET /.well-known/jwks.json`: the public keys that verify our access tokens."""
    # The ring never changes while the process runs, so the body is built once.
    body = json.dumps(keyring.jwks()).encode()

    async def jwks(request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=body,
            content_type="application/json",
            headers={"Cache-Control": "public, max-age=300"},
        )

    return jwks
