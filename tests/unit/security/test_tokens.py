"""The access-token matrix: what is issued, and every way a token must be refused.

Attack tokens are built by hand (base64url header and payload, then a signature of our choosing), so
the verifier is tested against exactly the bytes an attacker would send, not PyJWT's idea of them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shop.security.keys import KeyRing
from shop.security.tokens import (
    MAX_TOKEN_LENGTH,
    AccessClaims,
    InvalidToken,
    TokenExpired,
    TokenIssuer,
    TokenVerifier,
)
from tests.unit.security.forging import FakeClock, b64, segment

ISS, AUD, KID, TTL, LEEWAY = "shop", "shop-api", "2026-11-25", 900, 30
NOW = 1_790_000_000.0  # 2026-09: far from the real clock, so nothing here leans on it
USER = uuid.UUID("0190c0de-7e57-7abc-8def-0123456789ab")
RING_KEY = Ed25519PrivateKey.generate()
OLD_KEY = Ed25519PrivateKey.generate()
RING = KeyRing.of({KID: RING_KEY, "2026-01-10": OLD_KEY}, KID)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def issuer(clock) -> TokenIssuer:
    return TokenIssuer(RING, ISS, AUD, TTL, clock=clock)


@pytest.fixture
def verifier(clock) -> TokenVerifier:
    return TokenVerifier(RING, ISS, AUD, leeway_seconds=LEEWAY, clock=clock)


def unb64(text: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def header(**overrides: Any) -> dict[str, Any]:
    values = {"alg": "EdDSA", "typ": "at+jwt", "kid": KID, **overrides}
    return {k: v for k, v in values.items() if v is not DROP}


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(NOW)
    values = {
        "iss": ISS,
        "sub": str(USER),
        "aud": AUD,
        "iat": now,
        "nbf": now,
        "exp": now + TTL,
        "jti": uuid.uuid4().hex,
        "roles": ["customer"],
        "token_use": "access",
        **overrides,
    }
    return {k: v for k, v in values.items() if v is not DROP}


DROP = object()


def ed25519(key: Ed25519PrivateKey = RING_KEY):
    return key.sign


def forge(head: dict[str, Any], body: dict[str, Any], sign=None) -> str:
    signing_input = f"{segment(head)}.{segment(body)}"
    signature = (sign or ed25519())(signing_input.encode())
    return f"{signing_input}.{b64(signature)}"


def hmac_signer(secret: bytes, digest):
    return lambda data: hmac.new(secret, data, digest).digest()


PUBLIC = RING_KEY.public_key()
PUBLIC_RAW = PUBLIC.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
PUBLIC_PEM = PUBLIC.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
PUBLIC_DER = PUBLIC.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


# --- what is issued -----------------------------------------------------------------------------


def test_an_issued_token_round_trips(issuer, verifier):
    token, expires_in = issuer.issue(USER, ["customer", "admin"])
    assert expires_in == TTL
    verified = verifier.verify(token)
    assert verified == AccessClaims(
        user_id=USER,
        roles=("customer", "admin"),
        jti=verified.jti,
        issued_at=int(NOW),
        expires_at=int(NOW) + TTL,
    )
    assert len(verified.jti) == 32


def test_the_header_and_claims_follow_rfc_9068(issuer):
    token, _ = issuer.issue(USER, ["customer"])
    head, body, _ = token.split(".")
    assert unb64(head) == {"alg": "EdDSA", "typ": "at+jwt", "kid": KID}
    assert unb64(body) == {
        "iss": ISS,
        "sub": str(USER),
        "aud": AUD,
        "iat": int(NOW),
        "nbf": int(NOW),
        "exp": int(NOW) + TTL,
        "jti": unb64(body)["jti"],
        "roles": ["customer"],
        "token_use": "access",
    }


def test_every_token_has_its_own_jti(issuer, verifier):
    jtis = {verifier.verify(issuer.issue(USER, [])[0]).jti for _ in range(20)}
    assert len(jtis) == 20


def test_a_token_signed_by_an_older_key_of_the_ring_verifies(verifier):
    token = forge(header(kid="2026-01-10"), claims(), ed25519(OLD_KEY))
    assert verifier.verify(token).user_id == USER


def test_the_hand_built_token_is_accepted_so_every_refusal_below_is_meaningful(verifier):
    assert verifier.verify(forge(header(), claims())).user_id == USER


@pytest.mark.parametrize("typ", ["at+jwt", "application/at+jwt", "AT+JWT"])
def test_both_spellings_of_the_type_are_accepted(verifier, typ):
    verifier.verify(forge(header(typ=typ), claims()))


def test_a_lifetime_below_one_second_is_refused():
    with pytest.raises(ValueError, match="at least 1 second"):
        TokenIssuer(RING, ISS, AUD, 0.5)


# --- the algorithm is ours, never the token's ---------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE", ""])
@pytest.mark.parametrize("signature", [b"", b"x" * 64])
def test_alg_none_is_refused(verifier, alg, signature):
    token = forge(header(alg=alg), claims(roles=["admin"]), lambda _: signature)
    with pytest.raises(InvalidToken):
        verifier.verify(token)


@pytest.mark.parametrize(
    ("alg", "digest"), [("HS256", hashlib.sha256), ("HS384", hashlib.sha384), ("HS512", hashlib.sha512)]
)
@pytest.mark.parametrize(
    "secret",
    [PUBLIC_RAW, PUBLIC_PEM, PUBLIC_PEM.decode().strip().encode(), PUBLIC_DER, b64(PUBLIC_RAW).encode()],
    ids=["raw", "pem", "pem-stripped", "der", "jwks-x"],
)
def test_hmac_keyed_with_our_public_key_is_refused(verifier, alg, digest, secret):
    # The classic confusion attack: everything needed to forge this is published in the JWKS.
    token = forge(header(alg=alg), claims(roles=["admin"]), hmac_signer(secret, digest))
    with pytest.raises(InvalidToken, match="algorithm not allowed"):
        verifier.verify(token)


def test_rs256_from_another_key_is_refused(verifier):
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(claims(), attacker, algorithm="RS256", headers=header(alg="RS256"))
    with pytest.raises(InvalidToken, match="algorithm not allowed"):
        verifier.verify(token)


@pytest.mark.parametrize(("alg", "curve"), [("ES256", ec.SECP256R1()), ("ES384", ec.SECP384R1())])
def test_ecdsa_from_another_key_is_refused(verifier, alg, curve):
    attacker = ec.generate_private_key(curve)
    token = jwt.encode(claims(), attacker, algorithm=alg, headers=header(alg=alg))
    with pytest.raises(InvalidToken, match="algorithm not allowed"):
        verifier.verify(token)


@pytest.mark.parametrize("alg", ["eddsa", "EDDSA", "Ed25519", " EdDSA", ["EdDSA"], None, 1, DROP])
def test_anything_but_exactly_eddsa_is_refused(verifier, alg):
    with pytest.raises(InvalidToken, match="algorithm not allowed"):
        verifier.verify(forge(header(alg=alg), claims()))


# --- signature and key ---------------------------------------------------------------------------


def test_a_tampered_payload_is_refused(verifier, issuer):
    token, _ = issuer.issue(USER, ["customer"])
    head, body, signature = token.split(".")
    promoted = {**unb64(body), "roles": ["admin"]}
    with pytest.raises(InvalidToken, match="bad signature"):
        verifier.verify(f"{head}.{segment(promoted)}.{signature}")


def test_a_tampered_header_is_refused(verifier, issuer):
    token, _ = issuer.issue(USER, ["customer"])
    _, body, signature = token.split(".")
    # Pointing at the other key of the ring with the same signature.
    with pytest.raises(InvalidToken, match="bad signature"):
        verifier.verify(f"{segment(header(kid='2026-01-10'))}.{body}.{signature}")


def test_a_key_outside_the_ring_claiming_a_known_kid_is_refused(verifier):
    token = forge(header(), claims(roles=["admin"]), ed25519(Ed25519PrivateKey.generate()))
    with pytest.raises(InvalidToken, match="bad signature"):
        verifier.verify(token)


@pytest.mark.parametrize("signature", [b"", b"\x00" * 64, b"\x00" * 63, b"\x00" * 65])
def test_a_wrong_signature_is_refused(verifier, signature):
    with pytest.raises(InvalidToken):
        verifier.verify(forge(header(), claims(), lambda _: signature))


@pytest.mark.parametrize("kid", ["2099-01-01", "", "../dev", "dev"])
def test_an_unknown_kid_is_refused(verifier, kid):
    with pytest.raises(InvalidToken, match="unknown signing key"):
        verifier.verify(forge(header(kid=kid), claims()))


@pytest.mark.parametrize("kid", [DROP, None, 1, ["2026-11-25"], {"kid": KID}])
def test_a_missing_or_non_string_kid_is_refused(verifier, kid):
    with pytest.raises(InvalidToken, match="missing key id"):
        verifier.verify(forge(header(kid=kid), claims()))


@pytest.mark.parametrize(
    "extra",
    [{"crit": ["exp"]}, {"b64": False, "crit": ["b64"]}, {"b64": True}],
    ids=["crit", "b64", "b64-true"],
)
def test_extensions_we_never_issue_are_refused(verifier, extra):
    with pytest.raises(InvalidToken, match="unsupported header"):
        verifier.verify(forge(header(**extra), claims()))


# --- malformed input -----------------------------------------------------------------------------

VALID_HEAD = segment(header())
VALID_BODY = segment(claims())


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b",
        "a.b.c",
        "a.b.c.d",
        "..",
        "Bearer",
        "Bearer abc.def.ghi",
        "é.é.é",
        "\u202e.\u202e.\u202e",
        f"{VALID_HEAD}.{VALID_BODY}",
        f"{VALID_HEAD}.{VALID_BODY}.sig.extra",
        f"{VALID_HEAD}=.{VALID_BODY}.AAAA",
        f"{VALID_HEAD}.{VALID_BODY}.AA+/",
        f" {VALID_HEAD}.{VALID_BODY}.AAAA",
        f"{VALID_HEAD}.{VALID_BODY}.AAAA\n",
        f"{segment([1, 2])}.{VALID_BODY}.AAAA",
        f"{b64(b'not json')}.{VALID_BODY}.AAAA",
        f"{b64(bytes([0xFF, 0xFE]))}.{VALID_BODY}.AAAA",
        f"{VALID_HEAD}.{b64(b'not json')}.AAAA",
        f"{VALID_HEAD}.{segment([1])}.AAAA",
        f"{VALID_HEAD}.A.AAAA",
        "a" * (MAX_TOKEN_LENGTH + 1),
        f"{VALID_HEAD}.{'A' * MAX_TOKEN_LENGTH}.AAAA",
    ],
)
def test_garbage_is_refused(verifier, token):
    with pytest.raises(InvalidToken):
        verifier.verify(token)


@pytest.mark.parametrize("value", [None, b"a.b.c", 123])
def test_a_non_string_is_refused(verifier, value):
    with pytest.raises(InvalidToken, match="malformed"):
        verifier.verify(value)


# --- time ---------------------------------------------------------------------------------------


def test_a_token_is_valid_until_exp_plus_leeway(issuer, verifier, clock):
    token, _ = issuer.issue(USER, ["customer"])
    clock.now = NOW + TTL + LEEWAY - 1
    verifier.verify(token)


@pytest.mark.parametrize("late", [LEEWAY, LEEWAY + 1, 86_400])
def test_an_expired_token_is_refused_beyond_the_leeway(issuer, verifier, clock, late):
    token, _ = issuer.issue(USER, ["customer"])
    clock.now = NOW + TTL + late
    with pytest.raises(TokenExpired, match="expired"):
        verifier.verify(token)


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_a_token_from_the_near_future_is_accepted_within_the_leeway(verifier, claim):
    verifier.verify(forge(header(), claims(**{claim: int(NOW) + LEEWAY - 1})))


@pytest.mark.parametrize("claim", ["nbf", "iat"])
@pytest.mark.parametrize("ahead", [LEEWAY + 1, 3600])
def test_a_token_from_the_future_is_refused(verifier, claim, ahead):
    with pytest.raises(InvalidToken, match=r"future|not valid yet"):
        verifier.verify(forge(header(), claims(**{claim: int(NOW) + ahead})))


def test_a_token_without_nbf_is_accepted(verifier):
    verifier.verify(forge(header(), claims(nbf=DROP)))


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
@pytest.mark.parametrize("value", ["9999999999", True, None, [1], float("inf"), float("nan")])
def test_a_time_that_is_not_a_number_is_refused(verifier, claim, value):
    with pytest.raises(InvalidToken):
        verifier.verify(forge(header(), claims(**{claim: value})))


def test_fractional_times_are_numbers_too(verifier):
    verifier.verify(forge(header(), claims(iat=NOW - 0.5, exp=NOW + 60.25)))


# --- claims -------------------------------------------------------------------------------------


@pytest.mark.parametrize("claim", ["sub", "iss", "aud", "exp", "iat", "jti", "roles", "token_use"])
def test_a_missing_required_claim_is_refused(verifier, claim):
    with pytest.raises(InvalidToken, match=f"missing claim {claim}"):
        verifier.verify(forge(header(), claims(**{claim: DROP})))


@pytest.mark.parametrize("claim", ["sub", "iss", "aud", "exp", "iat", "jti", "roles", "token_use"])
def test_a_null_required_claim_is_refused(verifier, claim):
    with pytest.raises(InvalidToken):
        verifier.verify(forge(header(), claims(**{claim: None})))


@pytest.mark.parametrize("iss", ["evil", "SHOP", "shop ", "", ["shop"], 1])
def test_a_wrong_issuer_is_refused(verifier, iss):
    with pytest.raises(InvalidToken):
        verifier.verify(forge(header(), claims(iss=iss)))


@pytest.mark.parametrize("aud", ["other-api", "SHOP-API", [AUD, "other-api"], [AUD], "", 1])
def test_a_wrong_audience_is_refused(verifier, aud):
    with pytest.raises(InvalidToken):
        verifier.verify(forge(header(), claims(aud=aud)))


def test_a_token_from_another_issuer_config_is_refused(clock):
    token, _ = TokenIssuer(RING, "other", AUD, TTL, clock=clock).issue(USER, [])
    with pytest.raises(InvalidToken, match="wrong issuer"):
        TokenVerifier(RING, ISS, AUD, clock=clock).verify(token)
    token, _ = TokenIssuer(RING, ISS, "other", TTL, clock=clock).issue(USER, [])
    with pytest.raises(InvalidToken, match="wrong audience"):
        TokenVerifier(RING, ISS, AUD, clock=clock).verify(token)


@pytest.mark.parametrize("typ", ["JWT", "jwt", "at+jwt ", "refresh+jwt", "", None, 1, DROP])
def test_a_wrong_type_header_is_refused(verifier, typ):
    with pytest.raises(InvalidToken, match="not an access token"):
        verifier.verify(forge(header(typ=typ), claims()))


@pytest.mark.parametrize("use", ["refresh", "id", "ACCESS", "", ["access"], 1])
def test_a_token_that_is_not_for_access_is_refused(verifier, use):
    with pytest.raises(InvalidToken):
        verifier.verify(forge(header(), claims(token_use=use)))


@pytest.mark.parametrize(
    "sub",
    [
        "admin",
        "123",
        "",
        str(USER).upper(),
        USER.hex,
        "{" + str(USER) + "}",
        "urn:uuid:" + str(USER),
        5,
        [str(USER)],
    ],
)
def test_a_subject_that_is_not_a_canonical_uuid_is_refused(verifier, sub):
    with pytest.raises(InvalidToken, match="invalid claim sub"):
        verifier.verify(forge(header(), claims(sub=sub)))


@pytest.mark.parametrize("roles", ["admin", ["admin", 1], {"admin": True}, [["admin"]], [None], 7])
def test_roles_that_are_not_a_list_of_strings_are_refused(verifier, roles):
    with pytest.raises(InvalidToken, match="invalid claim roles"):
        verifier.verify(forge(header(), claims(roles=roles)))


def test_no_roles_is_an_empty_tuple(verifier):
    assert verifier.verify(forge(header(), claims(roles=[]))).roles == ()


@pytest.mark.parametrize("jti", ["", 1, ["x"]])
def test_a_bad_jti_is_refused(verifier, jti):
    with pytest.raises(InvalidToken, match="jti"):
        verifier.verify(forge(header(), claims(jti=jti)))


def test_a_token_verified_once_is_not_verified_again_but_still_expires(issuer, verifier, clock, monkeypatch):
    token, _ = issuer.issue(uuid.uuid4(), ["customer"])
    first = verifier.verify(token)
    checked: list[str] = []
    monkeypatch.setattr(verifier, "_verify", lambda t: checked.append(t))  # would answer None
    assert verifier.verify(token) == first  # from the cache: no second signature check
    assert checked == []
    clock.now = NOW + TTL + LEEWAY + 1
    with pytest.raises(TokenExpired):
        verifier.verify(token)  # the time is checked at every use
    monkeypatch.undo()
    with pytest.raises(TokenExpired):
        verifier.verify(token)  # and, gone from the cache, checked in full again


def test_the_cache_of_verified_tokens_is_bounded(issuer, verifier, monkeypatch):
    from shop.security import tokens

    monkeypatch.setattr(tokens, "VERIFIED_CACHE_SIZE", 3)
    issued = [issuer.issue(uuid.uuid4(), ["customer"])[0] for _ in range(5)]
    for token in issued:
        verifier.verify(token)
    assert len(verifier._verified) == 3
    assert list(verifier._verified) == issued[2:]  # the oldest went first


def test_a_forged_token_is_never_cached(issuer, verifier):
    token, _ = issuer.issue(uuid.uuid4(), ["customer"])
    head, payload, signature = token.split(".")
    forged = f"{head}.{payload}.{signature[:-4]}AAAA"
    for _ in range(2):
        with pytest.raises(InvalidToken):
            verifier.verify(forged)
    assert forged not in verifier._verified
