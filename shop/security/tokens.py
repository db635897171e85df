"""Access tokens: short-lived EdDSA JWTs in the RFC 9068 profile, issued and verified here only.

The verifier decides everything it can from the unverified header before PyJWT sees the token: the
algorithm must be exactly `EdDSA` and the key is looked up by `kid` in our ring, so a token can never
choose how it is checked (`alg: none`, HMAC keyed with our public key, someone else's RSA key).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import jwt
from jwt.exceptions import InvalidJTIError, InvalidSubjectError

from shop.security.keys import KeyRing

ALGORITHM = "EdDSA"
TOKEN_TYPE = "at+jwt"
# RFC 9068 §4: resource servers accept the media type in either spelling.
_ACCEPTED_TYPES = frozenset({"at+jwt", "application/at+jwt"})
TOKEN_USE = "access"
REQUIRED_CLAIMS = ("sub", "iss", "aud", "exp", "iat", "jti", "roles", "token_use")
# Far above a real token (a few hundred bytes): refuses work amplification before any decoding.
MAX_TOKEN_LENGTH = 4096
_COMPACT_JWS = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")

EpochClock = Callable[[], float]  # seconds since the epoch, as time.time (JWT times are such)


class InvalidToken(Exception):
    """The token must not be trusted; `reason` says why, in words safe to show the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TokenExpired(InvalidToken):
    """A well-formed, correctly signed token past its `exp` (the client should refresh)."""


@dataclass(frozen=True)
class AccessClaims:
    user_id: UUID
    roles: tuple[str, ...]
    jti: str
    # Seconds since the epoch, as in the token.
    issued_at: int
    expires_at: int
    # The account's address, so services can email the customer without reading the auth database.
    email: str | None = None


class TokenIssuer:
    def __init__(
        self, keyring: KeyRing, issuer: str, audience: str, ttl_seconds: float, clock: EpochClock = time.time
    ) -> None:
        if ttl_seconds < 1:
            raise ValueError(f"access token lifetime must be at least 1 second, got {ttl_seconds}")
        self._keyring = keyring
        self._issuer = issuer
        self._audience = audience
        self._ttl = int(ttl_seconds)
        self._clock = clock

    def issue(self, user_id: UUID, roles: Sequence[str], email: str | None = None) -> tuple[str, int]:
        """A signed access token and its lifetime in seconds (`expires_in`)."""
        now = int(self._clock())
        claims = {
            "iss": self._issuer,
            "sub": str(user_id),
            "aud": self._audience,
            "iat": now,
            "nbf": now,
            "exp": now + self._ttl,
            "jti": uuid.uuid4().hex,
            "roles": list(roles),
            "token_use": TOKEN_USE,
        }
        if email is not None:
            claims["email"] = email
        headers = {"alg": ALGORITHM, "typ": TOKEN_TYPE, "kid": self._keyring.signing_kid}
        token = jwt.encode(claims, self._keyring.signing_key, algorithm=ALGORITHM, headers=headers)
        return token, self._ttl


VERIFIED_CACHE_SIZE = 10_000


class TokenVerifier:
    def __init__(
        self,
        keyring: KeyRing,
        issuer: str,
        audience: str,
        leeway_seconds: float = 30,
        clock: EpochClock = time.time,
    ) -> None:
        self._keyring = keyring
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway_seconds
        self._clock = clock
        # Tokens verified already, and their claims: a client sends one token with every request
        # until it expires, and checking an Ed25519 signature each time was a twentieth of the
        # gateway's CPU. What depends on the time (expiry) is checked again at every use; what does
        # not (signature, issuer, audience, claims) cannot change. Bounded: oldest out first.
        self._verified: dict[str, AccessClaims] = {}

    def verify(self, token: str) -> AccessClaims:
        """The token's claims, or `InvalidToken` (`TokenExpired` when that is the only fault)."""
        known = self._verified.get(token)
        if known is not None:
            if known.expires_at <= self._clock() - self._leeway:
                del self._verified[token]
                raise TokenExpired("token expired")
            return known
        claims = self._verify(token)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            del self._verified[next(iter(self._verified))]
        self._verified[token] = claims
        return claims

    def _verify(self, token: str) -> AccessClaims:
        if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or not _COMPACT_JWS.match(token):
            raise InvalidToken("malformed token")
        header = _header(token)
        key = self._keyring.public_keys.get(header["kid"])
        if key is None:
            raise InvalidToken("unknown signing key")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway,
                options={
                    "require": list(REQUIRED_CLAIMS),
                    # A single audience, exactly ours: a list naming us among others is refused.
                    "strict_aud": True,
                    # PyJWT reads the wall clock itself (datetime.now) and casts times with int(),
                    # which lets "9999999999" or true through: times are checked below instead.
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidToken(f"missing claim {exc.claim}") from None
        except jwt.InvalidSignatureError:
            raise InvalidToken("bad signature") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken("wrong issuer") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken("wrong audience") from None
        except InvalidSubjectError:
            raise InvalidToken("invalid claim sub") from None
        except InvalidJTIError:
            raise InvalidToken("invalid claim jti") from None
        except jwt.PyJWTError:
            raise InvalidToken("malformed token") from None
        return self._claims(claims)

    def _claims(self, claims: Mapping[str, Any]) -> AccessClaims:
        now = self._clock()
        exp = _numeric_date(claims, "exp")
        iat = _numeric_date(claims, "iat")
        if exp <= now - self._leeway:
            raise TokenExpired("token expired")
        if iat > now + self._leeway:
            raise InvalidToken("token issued in the future")
        if "nbf" in claims and _numeric_date(claims, "nbf") > now + self._leeway:
            raise InvalidToken("token not valid yet")
        if claims["token_use"] != TOKEN_USE:
            raise InvalidToken("not an access token")
        jti = claims["jti"]
        if not isinstance(jti, str) or not jti:
            raise InvalidToken("invalid claim jti")
        roles = claims["roles"]
        if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
            raise InvalidToken("invalid claim roles")
        email = claims.get("email")
        if email is not None and (not isinstance(email, str) or len(email) > 254):
            raise InvalidToken("invalid claim email")
        return AccessClaims(
            email=email,
            user_id=_user_id(claims["sub"]),
            roles=tuple(roles),
            jti=jti,
            issued_at=int(iat),
            expires_at=int(exp),
        )


def _header(token: str) -> dict[str, Any]:
    """The unverified header, checked against what we issue before any key is chosen."""
    segment = token.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (binascii.Error, ValueError, RecursionError):
        raise InvalidToken("malformed token") from None
    if not isinstance(header, dict):
        raise InvalidToken("malformed token")
    # The allow-list: one asymmetric algorithm, compared exactly ("eddsa", "none", "HS256" all fail).
    if header.get("alg") != ALGORITHM:
        raise InvalidToken("algorithm not allowed")
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in _ACCEPTED_TYPES:
        raise InvalidToken("not an access token")
    if not isinstance(header.get("kid"), str):
        raise InvalidToken("missing key id")
    # We issue no critical extensions; b64=false (detached payloads) would change what is signed.
    if "crit" in header or "b64" in header:
        raise InvalidToken("unsupported header")
    return header


def _numeric_date(claims: Mapping[str, Any], name: str) -> float:
    value = claims[name]
    # bool is an int to Python; NaN and infinity are JSON to Python's parser.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidToken(f"invalid claim {name}")
    return float(value)


def _user_id(sub: Any) -> UUID:
    # Only the canonical spelling we issue: UUID() also takes braces, urn:uuid: and missing hyphens.
    try:
        user_id = UUID(sub)
    except (TypeError, ValueError, AttributeError):
        raise InvalidToken("invalid claim sub") from None
    if str(user_id) != sub:
        raise InvalidToken("invalid claim sub")
    return user_id
