"""Every forged or broken access token is refused by the gateway with 401 and WWW-Authenticate."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
import uuid
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from harness.http import request
from shop.security.keys import load_keyring


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(obj: dict) -> str:
    return _b64(json.dumps(obj).encode())


@pytest.fixture(scope="module")
def keyring(stack):
    # The gateway generated its development key on first start; the test reads the same file.
    return load_keyring(Path(os.environ["SHOP_JWT_KEYS_DIR"]), None, None, generate_if_empty=False)


def _claims(**override) -> dict:
    now = int(time.time())
    claims = {
        "iss": "shop",
        "aud": "shop-api",
        "sub": str(uuid.uuid4()),
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
        "roles": ["customer"],
        "token_use": "access",
    }
    claims.update(override)
    return {k: v for k, v in claims.items() if v is not None}


def _signed(keyring, claims: dict, kid: str | None = None, key=None) -> str:
    headers = {"typ": "at+jwt", "kid": kid or keyring.signing_kid}
    return jwt.encode(claims, key or keyring.signing_key, algorithm="EdDSA", headers=headers)


def _attacks(keyring) -> dict[str, str]:
    public_pem = keyring.public_keys[keyring.signing_kid].public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    valid = _signed(keyring, _claims())
    header, payload, signature = valid.split(".")
    tampered = json.loads(base64.urlsafe_b64decode(payload + "=="))
    tampered["roles"] = ["customer", "admin"]
    hs256_header = _segment({"alg": "HS256", "typ": "at+jwt", "kid": keyring.signing_kid})
    hs256_body = _segment(_claims())
    hs256_signature = _b64(
        hmac.new(public_pem, f"{hs256_header}.{hs256_body}".encode(), hashlib.sha256).digest()
    )
    none_header = _segment({"alg": "none", "typ": "at+jwt", "kid": keyring.signing_kid})
    return {
        "alg none": f"{none_header}.{_segment(_claims())}.",
        "HS256 keyed with the public key": f"{hs256_header}.{hs256_body}.{hs256_signature}",
        "RS256 from another key": jwt.encode(
            _claims(),
            rsa.generate_private_key(public_exponent=65537, key_size=2048),
            algorithm="RS256",
            headers={"kid": keyring.signing_kid, "typ": "at+jwt"},
        ),
        "ES256 from another key": jwt.encode(
            _claims(),
            ec.generate_private_key(ec.SECP256R1()),
            algorithm="ES256",
            headers={"kid": keyring.signing_kid},
        ),
        "expired": _signed(keyring, _claims(exp=int(time.time()) - 120, iat=int(time.time()) - 1000)),
        "not yet valid": _signed(keyring, _claims(nbf=int(time.time()) + 600)),
        "wrong audience": _signed(keyring, _claims(aud="another-api")),
        "wrong issuer": _signed(keyring, _claims(iss="https://evil.example")),
        "tampered payload": f"{header}.{_segment(tampered)}.{signature}",
        "unknown kid": _signed(keyring, _claims(), kid="nobody"),
        "right kid, foreign key": _signed(keyring, _claims(), key=ed25519.Ed25519PrivateKey.generate()),
        "no exp": _signed(keyring, _claims(exp=None)),
        "refresh-type token": _signed(keyring, _claims(token_use="refresh")),
        "garbage": "garbage",
        "three dots of garbage": "a.b.c",
        "empty": "",
    }


def test_a_valid_token_is_accepted_so_the_refusals_below_mean_something(stack, keyring):
    # A token for a user that does not exist passes the signature check and then finds no account.
    response = request(
        "GET",
        stack.url("gateway", "/api/v1/auth/me"),
        headers={"Authorization": f"Bearer {_signed(keyring, _claims())}"},
    )
    assert response.status == 404


@pytest.mark.parametrize(
    "attack",
    [
        "alg none",
        "HS256 keyed with the public key",
        "RS256 from another key",
        "ES256 from another key",
        "expired",
        "not yet valid",
        "wrong audience",
        "wrong issuer",
        "tampered payload",
        "unknown kid",
        "right kid, foreign key",
        "no exp",
        "refresh-type token",
        "garbage",
        "three dots of garbage",
        "empty",
    ],
)
def test_every_attack_is_401(stack, keyring, attack):
    token = _attacks(keyring)[attack]
    response = request(
        "GET", stack.url("gateway", "/api/v1/auth/me"), headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status == 401, (attack, response.body)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    body = response.json()
    assert body["error"]["code"] in {"unauthorized", "invalid_token", "token_expired"}


def test_a_client_sent_identity_header_is_not_trusted(stack):
    response = request(
        "GET",
        stack.url("gateway", "/api/v1/auth/me"),
        headers={"X-User-Id": str(uuid.uuid4()), "X-User-Roles": "admin"},
    )
    assert response.status == 401
