"""Loading, choosing and publishing the signing keys, on files under tmp_path only."""

from __future__ import annotations

import base64
import json
import stat
import uuid

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shop.security.keys import (
    InvalidKeyFile,
    KeyFileExists,
    KeyRing,
    KeyringError,
    generate_key_file,
    load_keyring,
)
from shop.security.tokens import InvalidToken, TokenIssuer, TokenVerifier
from tests.concurrency import run_together

ISS, AUD = "shop", "shop-api"


def _pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _write(path, key: Ed25519PrivateKey) -> Ed25519PrivateKey:
    path.write_bytes(_pem(key))
    path.chmod(0o600)
    return key


def _load(keys_dir, signing_kid=None, pem=None, generate=False) -> KeyRing:
    return load_keyring(keys_dir, signing_kid, pem, generate_if_empty=generate)


def test_every_file_is_loaded_and_the_newest_by_name_signs(tmp_path):
    old = _write(tmp_path / "2026-01-10.pem", Ed25519PrivateKey.generate())
    new = _write(tmp_path / "2026-11-25.pem", Ed25519PrivateKey.generate())
    ring = _load(tmp_path)
    assert set(ring.public_keys) == {"2026-01-10", "2026-11-25"}
    assert ring.signing_kid == "2026-11-25"
    assert _raw_public(ring.signing_key) == _raw_public(new)
    assert ring.public_keys["2026-01-10"].public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    ) == _raw_public(old)


def test_signing_kid_overrides_the_newest(tmp_path):
    old = _write(tmp_path / "2026-01-10.pem", Ed25519PrivateKey.generate())
    _write(tmp_path / "2026-11-25.pem", Ed25519PrivateKey.generate())
    ring = _load(tmp_path, signing_kid="2026-01-10")
    assert ring.signing_kid == "2026-01-10"
    assert _raw_public(ring.signing_key) == _raw_public(old)
    assert len(ring.public_keys) == 2


def test_an_unknown_signing_kid_is_an_error_naming_it(tmp_path):
    _write(tmp_path / "a.pem", Ed25519PrivateKey.generate())
    with pytest.raises(KeyringError, match="nope"):
        _load(tmp_path, signing_kid="nope")


@pytest.mark.parametrize("kid", ["../etc", "a b", "", ".hidden", "x" * 65])
def test_an_odd_signing_kid_is_refused(tmp_path, kid):
    _write(tmp_path / "a.pem", Ed25519PrivateKey.generate())
    with pytest.raises(KeyringError):
        _load(tmp_path, signing_kid=kid)


def test_the_env_key_signs_next_to_the_files(tmp_path):
    _write(tmp_path / "2026-11-25.pem", Ed25519PrivateKey.generate())
    env = Ed25519PrivateKey.generate()
    ring = _load(tmp_path, pem=_pem(env).decode())
    assert ring.signing_kid == "env"
    assert _raw_public(ring.signing_key) == _raw_public(env)
    assert set(ring.public_keys) == {"env", "2026-11-25"}


def test_the_env_key_takes_the_signing_kid_as_its_name(tmp_path):
    env = Ed25519PrivateKey.generate()
    ring = _load(tmp_path / "missing", signing_kid="swarm-7", pem=_pem(env).decode())
    assert ring.signing_kid == "swarm-7"
    assert set(ring.public_keys) == {"swarm-7"}
    assert not (tmp_path / "missing").exists()


def test_an_env_key_and_a_file_of_the_same_kid_must_agree(tmp_path):
    _write(tmp_path / "k1.pem", Ed25519PrivateKey.generate())
    with pytest.raises(KeyringError, match="two different keys"):
        _load(tmp_path, signing_kid="k1", pem=_pem(Ed25519PrivateKey.generate()).decode())


def test_a_bad_env_key_is_named_without_echoing_it(tmp_path):
    with pytest.raises(InvalidKeyFile, match="SHOP_JWT_PRIVATE_KEY") as info:
        _load(tmp_path, pem="-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n")
    assert "c2VjcmV0" not in str(info.value)


def test_rollover_publishes_both_keys_and_old_tokens_still_verify(tmp_path):
    _write(tmp_path / "2026-01-10.pem", Ed25519PrivateKey.generate())
    before = _load(tmp_path)
    old_token, _ = TokenIssuer(before, ISS, AUD, 900).issue(uuid.uuid4(), ["customer"])

    _write(tmp_path / "2026-11-25.pem", Ed25519PrivateKey.generate())
    after = _load(tmp_path)
    assert after.signing_kid == "2026-11-25"
    assert [k["kid"] for k in after.jwks()["keys"]] == ["2026-01-10", "2026-11-25"]
    new_token, _ = TokenIssuer(after, ISS, AUD, 900).issue(uuid.uuid4(), ["customer"])

    verifier = TokenVerifier(after, ISS, AUD)
    verifier.verify(old_token)
    verifier.verify(new_token)
    # A gateway that has not restarted yet verifies only what it knows.
    with pytest.raises(InvalidToken, match="unknown signing key"):
        TokenVerifier(before, ISS, AUD).verify(new_token)


def test_an_added_key_takes_over_from_the_generated_dev_key(tmp_path):
    _load(tmp_path, generate=True)
    _write(tmp_path / "2026-11-25.pem", Ed25519PrivateKey.generate())
    # "dev" sorts after every dated name, yet the operator's key is the one meant to sign.
    assert _load(tmp_path).signing_kid == "2026-11-25"


def test_a_dev_key_is_generated_once_when_nothing_is_configured(tmp_path):
    keys_dir = tmp_path / "var" / "keys"
    first = _load(keys_dir, generate=True)
    assert first.signing_kid == "dev"
    assert stat.S_IMODE(keys_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((keys_dir / "dev.pem").stat().st_mode) == 0o600
    second = _load(keys_dir, generate=True)
    assert _raw_public(second.signing_key) == _raw_public(first.signing_key)
    assert [p.name for p in keys_dir.iterdir()] == ["dev.pem"]


def test_processes_starting_together_share_one_dev_key(tmp_path):
    keys_dir = tmp_path / "keys"
    rings = run_together([lambda: _load(keys_dir, generate=True)] * 8)
    assert len(rings) == 8
    assert len({_raw_public(ring.signing_key) for ring in rings}) == 1
    assert sorted(p.name for p in keys_dir.iterdir()) == ["dev.pem"]


def test_without_keys_and_without_generation_it_is_an_error(tmp_path):
    with pytest.raises(KeyringError, match="no signing key"):
        _load(tmp_path / "missing")
    with pytest.raises(KeyringError, match="no signing key"):
        _load(tmp_path)


def test_generate_key_file_never_replaces_a_key(tmp_path):
    path = generate_key_file(tmp_path, "2026-11-25")
    assert path == tmp_path / "2026-11-25.pem"
    before = path.read_bytes()
    with pytest.raises(KeyFileExists):
        generate_key_file(tmp_path, "2026-11-25")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["2026-11-25.pem"]


def test_generate_key_file_refuses_an_odd_kid(tmp_path):
    with pytest.raises(KeyringError):
        generate_key_file(tmp_path, "../escape")
    assert list(tmp_path.iterdir()) == []


def _rsa_pem() -> bytes:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _ec_pem() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _encrypted_pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    )


def _public_pem() -> bytes:
    return (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


@pytest.mark.parametrize(
    "content",
    [_rsa_pem, _ec_pem, _encrypted_pem, _public_pem, lambda: b"", lambda: b"not a key at all"],
    ids=["rsa", "ec", "encrypted", "public-only", "empty", "garbage"],
)
def test_a_bad_key_file_is_an_error_naming_the_file(tmp_path, content):
    _write(tmp_path / "good.pem", Ed25519PrivateKey.generate())
    (tmp_path / "bad.pem").write_bytes(content())
    with pytest.raises(InvalidKeyFile) as info:
        _load(tmp_path)
    assert info.value.path == tmp_path / "bad.pem"
    assert "bad.pem" in str(info.value)


def test_a_key_file_with_an_odd_name_is_an_error(tmp_path):
    _write(tmp_path / "has space.pem", Ed25519PrivateKey.generate())
    with pytest.raises(InvalidKeyFile, match=r"has space\.pem"):
        _load(tmp_path)


def test_an_unreadable_key_file_is_an_error_naming_it(tmp_path):
    (tmp_path / "dir.pem").mkdir()
    with pytest.raises(InvalidKeyFile, match=r"dir\.pem"):
        _load(tmp_path)


def test_other_files_are_ignored(tmp_path):
    _write(tmp_path / "a.pem", Ed25519PrivateKey.generate())
    (tmp_path / "README").write_text("keys live here")
    (tmp_path / ".a.1234.tmp").write_bytes(b"half a key")
    assert set(_load(tmp_path).public_keys) == {"a"}


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_jwks_publishes_public_parts_only(tmp_path):
    keys = {kid: _write(tmp_path / f"{kid}.pem", Ed25519PrivateKey.generate()) for kid in ("k1", "k2")}
    jwks = _load(tmp_path).jwks()
    assert set(jwks) == {"keys"}
    for jwk in jwks["keys"]:
        assert set(jwk) == {"kty", "crv", "x", "kid", "alg", "use"}
        assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == ("OKP", "Ed25519", "EdDSA", "sig")
        assert "=" not in jwk["x"]
        assert _b64url_decode(jwk["x"]) == _raw_public(keys[jwk["kid"]])
    text = json.dumps(jwks)
    for key in keys.values():
        private = key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        assert base64.urlsafe_b64encode(private).rstrip(b"=").decode() not in text
        assert '"d"' not in text


def test_the_ring_cannot_be_changed_after_loading(tmp_path):
    _write(tmp_path / "a.pem", Ed25519PrivateKey.generate())
    ring = _load(tmp_path)
    with pytest.raises(TypeError):
        ring.public_keys["evil"] = Ed25519PrivateKey.generate().public_key()  # type: ignore[index]
    assert "signing_key" not in repr(ring)
