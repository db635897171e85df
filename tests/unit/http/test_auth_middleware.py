"""Bearer tokens at the gateway: 401s in the error envelope, forged identity headers dropped, admins."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shop.http.auth import (
    PRINCIPAL_KEY,
    identity_middleware,
    jwks_handler,
    optional_principal,
    require_admin,
    require_principal,
)
from shop.http.headers import strip_headers_middleware
from shop.http.middlewares import error_middleware, request_id_middleware
from shop.security.keys import KeyRing
from shop.security.tokens import TokenIssuer, TokenVerifier
from tests.unit.security.forging import FakeClock, b64, segment

ISS, AUD, KID = "shop", "shop-api", "k1"
KEY = Ed25519PrivateKey.generate()
RING = KeyRing.of({KID: KEY}, KID)
USER = uuid.uuid4()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(time.time())


@pytest.fixture
def issuer(clock) -> TokenIssuer:
    return TokenIssuer(RING, ISS, AUD, 900, clock=clock)


@pytest.fixture
async def client(aiohttp_client, clock) -> TestClient:
    verifier = TokenVerifier(RING, ISS, AUD, clock=clock)
    app = web.Application(
        middlewares=[
            request_id_middleware,
            error_middleware,
            strip_headers_middleware,
            identity_middleware(verifier),
        ]
    )

    async def me(request: web.Request) -> web.Response:
        principal = require_principal(request)
        again = require_principal(request)  # the second call is served from the request
        assert again is principal is request[PRINCIPAL_KEY]
        return web.json_response(
            {
                "user_id": str(principal.user_id),
                "roles": sorted(principal.roles),
                "admin": principal.is_admin(),
                "x_user_id": request.headers.get("X-User-Id"),
                "x_keep": request.headers.getall("X-Keep", []),
                "identity_headers": sorted(
                    h for h in request.headers if h.lower().startswith(("x-user", "x-shop-user", "x-auth"))
                ),
            }
        )

    async def admin_only(request: web.Request) -> web.Response:
        principal = require_admin(request)
        return web.json_response({"user_id": str(principal.user_id)})

    async def public(request: web.Request) -> web.Response:
        principal = optional_principal(request)
        return web.json_response({"user_id": str(principal.user_id) if principal else None})

    app.router.add_get("/me", me)
    app.router.add_get("/admin", admin_only)
    app.router.add_get("/public", public)
    app.router.add_get("/.well-known/jwks.json", jwks_handler(RING))
    return await aiohttp_client(app)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def assert_401(response, code: str = "invalid_token", *, error: bool = True) -> dict:
    assert response.status == 401
    body = await response.json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert body["error"]["request_id"] == response.headers["X-Request-Id"]
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="shop"')
    if error:
        assert 'error="invalid_token"' in challenge
        assert "error_description=" in challenge
    else:
        assert challenge == 'Bearer realm="shop"'
    return body


def forged_claims(**overrides) -> dict:
    now = int(time.time())
    return {
        "iss": ISS,
        "sub": str(USER),
        "aud": AUD,
        "iat": now,
        "nbf": now,
        "exp": now + 900,
        "jti": uuid.uuid4().hex,
        "roles": ["admin"],
        "token_use": "access",
        **overrides,
    }


def _alg_none() -> str:
    return f"{segment({'alg': 'none', 'typ': 'at+jwt', 'kid': KID})}.{segment(forged_claims())}."


def _hs256_with_public_key() -> str:
    secret = KEY.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    signing_input = f"{segment({'alg': 'HS256', 'typ': 'at+jwt', 'kid': KID})}.{segment(forged_claims())}"
    return f"{signing_input}.{b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


def _foreign_key() -> str:
    signing_input = f"{segment({'alg': 'EdDSA', 'typ': 'at+jwt', 'kid': KID})}.{segment(forged_claims())}"
    return f"{signing_input}.{b64(Ed25519PrivateKey.generate().sign(signing_input.encode()))}"


def _promoted(issuer: TokenIssuer) -> str:
    head, _, signature = issuer.issue(USER, ["customer"])[0].split(".")
    return f"{head}.{segment(forged_claims())}.{signature}"


def _other_audience(clock: FakeClock) -> str:
    return TokenIssuer(RING, ISS, "someone-else", 900, clock=clock).issue(USER, ["admin"])[0]


ATTACKS = {
    "alg-none": lambda issuer, clock: _alg_none(),
    "hs256-public-key": lambda issuer, clock: _hs256_with_public_key(),
    "foreign-key": lambda issuer, clock: _foreign_key(),
    "tampered-roles": lambda issuer, clock: _promoted(issuer),
    "wrong-audience": lambda issuer, clock: _other_audience(clock),
    "garbage": lambda issuer, clock: "a.b.c",
}


async def test_no_token_is_a_401_with_the_plain_bearer_challenge(client):
    response = await client.get("/me")
    body = await assert_401(response, "unauthorized", error=False)
    assert "Bearer" in body["error"]["message"]


@pytest.mark.parametrize("value", ["Basic dXNlcjpwYXNz", "Token abc", "Digest username=x", "Bearerx abc"])
async def test_another_scheme_is_a_401_with_the_plain_bearer_challenge(client, value):
    response = await client.get("/me", headers={"Authorization": value})
    await assert_401(response, "unauthorized", error=False)


@pytest.mark.parametrize(
    "value", ["Bearer", "Bearer ", "Bearer a b", "Bearer\ttoken", "Bearer=abc", "bearer,x", "Bearer a.b.c!"]
)
async def test_a_malformed_authorization_header_is_a_401(client, value):
    await assert_401(await client.get("/me", headers={"Authorization": value}))


@pytest.mark.parametrize("attack", list(ATTACKS))
async def test_each_attack_is_a_401_in_the_error_envelope(client, issuer, clock, attack):
    response = await client.get("/me", headers=bearer(ATTACKS[attack](issuer, clock)))
    body = await assert_401(response)
    assert body["error"]["message"].startswith("the access token is invalid")


async def test_an_expired_token_says_so(client, issuer, clock):
    token, _ = issuer.issue(USER, ["customer"])
    clock.now += 900 + 31
    response = await client.get("/me", headers=bearer(token))
    await assert_401(response, "token_expired")


async def test_a_valid_token_reaches_the_handler_with_the_principal(client, issuer):
    token, _ = issuer.issue(USER, ["customer"])
    response = await client.get("/me", headers=bearer(token))
    assert response.status == 200
    assert await response.json() == {
        "user_id": str(USER),
        "roles": ["customer"],
        "admin": False,
        "x_user_id": None,
        "x_keep": [],
        "identity_headers": [],
    }


async def test_the_scheme_is_case_insensitive(client, issuer):
    token, _ = issuer.issue(USER, ["customer"])
    response = await client.get("/me", headers={"Authorization": f"bearer {token}"})
    assert response.status == 200


async def test_two_authorization_headers_are_a_401(client, issuer):
    token, _ = issuer.issue(USER, ["customer"])
    headers = [("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")]
    await assert_401(await client.get("/me", headers=headers))


async def test_client_identity_headers_never_reach_the_handler(client, issuer):
    token, _ = issuer.issue(USER, ["customer"])
    forged = {
        "X-User-Id": str(uuid.uuid4()),
        "x-user-roles": "admin",
        "X-Authenticated-User": "root",
        "X-Shop-User-Id": str(uuid.uuid4()),
        "X-Shop-User-Roles": "admin",
    }
    headers = [*bearer(token).items(), *forged.items(), ("X-Keep", "one"), ("X-Keep", "two")]
    response = await client.get("/me", headers=headers)
    assert response.status == 200
    body = await response.json()
    assert body["user_id"] == str(USER)
    assert body["x_user_id"] is None
    assert body["identity_headers"] == []
    assert body["roles"] == ["customer"]
    # Everything else survives the rewrite, repeated headers included.
    assert body["x_keep"] == ["one", "two"]


async def test_a_forged_identity_next_to_undecodable_bytes_is_stripped_and_the_request_served(client, issuer):
    # Stripping clones the request, and the clone once failed on the undecodable bytes (a 500, then
    # a 400): the request is served as it is when nothing needs stripping.
    token, _ = issuer.issue(USER, ["customer"])
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(
        b"GET /me HTTP/1.1\r\nHost: x\r\nX-User-Id: 1\r\nX-Odd: caf\xe9\r\n"
        + f"Authorization: Bearer {token}\r\n".encode()
        + b"Connection: close\r\n\r\n"
    )
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    seen = json.loads(body)
    assert seen["user_id"] == str(USER)
    assert seen["x_user_id"] is None


async def test_an_identity_header_alone_authenticates_nobody(client):
    response = await client.get("/me", headers={"X-User-Id": str(USER), "X-User-Roles": "admin"})
    await assert_401(response, "unauthorized", error=False)


async def test_require_admin_refuses_a_customer(client, issuer):
    token, _ = issuer.issue(USER, ["customer"])
    response = await client.get("/admin", headers=bearer(token))
    assert response.status == 403
    body = await response.json()
    assert body["error"]["code"] == "forbidden"
    assert body["error"]["request_id"] == response.headers["X-Request-Id"]
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]


async def test_require_admin_admits_an_admin(client, issuer):
    token, _ = issuer.issue(USER, ["customer", "admin"])
    response = await client.get("/admin", headers=bearer(token))
    assert response.status == 200
    assert await response.json() == {"user_id": str(USER)}


async def test_require_admin_without_a_token_is_a_401_not_a_403(client):
    await assert_401(await client.get("/admin"), "unauthorized", error=False)


async def test_a_forged_admin_token_is_a_401_on_admin_routes(client):
    await assert_401(await client.get("/admin", headers=bearer(_alg_none())))


async def test_optional_principal(client, issuer):
    assert await (await client.get("/public")).json() == {"user_id": None}
    token, _ = issuer.issue(USER, ["customer"])
    assert await (await client.get("/public", headers=bearer(token))).json() == {"user_id": str(USER)}
    # Credentials that are sent must be valid, even where none are needed.
    await assert_401(await client.get("/public", headers=bearer("a.b.c")))


async def test_require_principal_without_the_middleware_fails_closed(aiohttp_client):
    async def me(request: web.Request) -> web.Response:
        require_principal(request)
        return web.json_response({})

    app = web.Application(middlewares=[request_id_middleware, error_middleware])
    app.router.add_get("/me", me)
    client = await aiohttp_client(app)
    response = await client.get("/me", headers={"X-User-Id": str(USER)})
    assert response.status == 500


async def test_jwks_endpoint(client):
    response = await client.get("/.well-known/jwks.json")
    assert response.status == 200
    assert response.headers["Cache-Control"] == "public, max-age=300"
    assert response.content_type == "application/json"
    assert await response.json() == RING.jwks()
    (jwk,) = (await response.json())["keys"]
    assert jwk["kid"] == KID
    assert set(jwk) == {"kty", "crv", "x", "kid", "alg", "use"}
