"""Ed25519 signing keys for access tokens (JWT alg `EdDSA`), and the JWKS that publishes them.

A keys directory holds one PEM private key per file; the file stem is the key id (`kid`). Every key
in the directory verifies and is published, so a rollover is: add `2026-11-25.pem` (it signs from the
next start on, being the newest by name), keep the old file until its last token has expired, then
delete it.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

log = logging.getLogger("shop.security")

# The key written when a development machine has no key at all.
DEV_KID = "dev"
# The kid of a key handed over in SHOP_JWT_PRIVATE_KEY when SHOP_JWT_SIGNING_KID does not name it.
ENV_KID = "env"
# Kids end up in token headers, file names and logs: keep them short and unremarkable.
_KID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class KeyringError(ValueError):
    """The signing keys cannot be loaded as configured."""


class InvalidKeyFile(KeyringError):
    """A key file (or the key given in the environment) is unreadable or not an Ed25519 private key."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class KeyFileExists(KeyringError):
    """`generate_key_file` was asked for a kid that already has a file."""


def valid_kid(kid: str) -> bool:
    return bool(_KID.match(kid))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def public_jwk(kid: str, key: Ed25519PublicKey) -> dict[str, str]:
    """RFC 8037 form of one public key."""
    x = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": _b64url(x), "kid": kid, "alg": "EdDSA", "use": "sig"}


@dataclass(frozen=True)
class KeyRing:
    """The key that signs new tokens and every public key that still verifies old ones."""

    signing_kid: str
    signing_key: Ed25519PrivateKey = field(repr=False)
    public_keys: Mapping[str, Ed25519PublicKey]

    def __post_init__(self) -> None:
        if self.signing_kid not in self.public_keys:
            raise KeyringError(f"the signing key {self.signing_kid!r} is not among the verifying keys")
        # Read-only, so a verifier holding the ring cannot be handed a key later by accident.
        object.__setattr__(self, "public_keys", MappingProxyType(dict(self.public_keys)))

    @classmethod
    def of(cls, keys: Mapping[str, Ed25519PrivateKey], signing_kid: str) -> KeyRing:
        """A ring from private keys by kid (tests and tools)."""
        if signing_kid not in keys:
            raise KeyringError(f"no key with kid {signing_kid!r}")
        return cls(signing_kid, keys[signing_kid], {kid: k.public_key() for kid, k in keys.items()})

    def jwks(self) -> dict[str, Any]:
        """The JWK Set for `/.well-known/jwks.json`: public parts only, in kid order."""
        return {"keys": [public_jwk(kid, self.public_keys[kid]) for kid in sorted(self.public_keys)]}


def load_keyring(
    keys_dir: Path,
    signing_kid: str | None,
    private_key_pem: str | None,
    generate_if_empty: bool,
) -> KeyRing:
    """Every `*.pem` key of `keys_dir`, plus the PEM from the environment if given.

    The signing key is `signing_kid` when given, else the environment's key, else the newest file by
    name. With no key anywhere and `generate_if_empty`, a development key `dev.pem` is created; two
    processes starting together end up sharing one.
    """
    if signing_kid is not None and not valid_kid(signing_kid):
        raise KeyringError(f"signing kid {signing_kid!r} must match {_KID.pattern}")
    private = _load_dir(keys_dir)
    env_kid: str | None = None
    if private_key_pem:
        env_kid = signing_kid or ENV_KID
        env_key = _parse_private_key(private_key_pem.encode(), "SHOP_JWT_PRIVATE_KEY")
        on_disk = private.get(env_kid)
        if on_disk is not None and _raw_public(on_disk) != _raw_public(env_key):
            raise KeyringError(
                f"kid {env_kid!r} names two different keys: SHOP_JWT_PRIVATE_KEY and {keys_dir / env_kid}.pem"
            )
        private[env_kid] = env_key
    if not private and generate_if_empty:
        try:
            generate_key_file(keys_dir, DEV_KID)
            log.warning("no signing key found: generated a development key in %s", keys_dir / "dev.pem")
        except KeyFileExists:
            pass  # another process won the race; its complete file is read below
        private = _load_dir(keys_dir)
    if not private:
        raise KeyringError(
            f"no signing key: {keys_dir} has no *.pem file and SHOP_JWT_PRIVATE_KEY is not set"
        )

    if signing_kid is not None:
        if signing_kid not in private:
            raise KeyringError(
                f"signing kid {signing_kid!r} is not among the keys: {', '.join(sorted(private))}"
            )
        chosen = signing_kid
    elif env_kid is not None:
        chosen = env_kid
    else:
        chosen = _newest(private)
    return KeyRing.of(private, chosen)


def _newest(private: Mapping[str, Ed25519PrivateKey]) -> str:
    # The generated development key yields to any key an operator adds, even one whose name sorts
    # before "dev" (every dated name does).
    named = sorted(kid for kid in private if kid != DEV_KID)
    return named[-1] if named else DEV_KID


def generate_key_file(keys_dir: Path, kid: str) -> Path:
    """Writes a new Ed25519 key as `keys_dir/<kid>.pem` (0600; the directory is created 0700).

    The file appears whole or not at all, and never replaces an existing one: `KeyFileExists` then.
    This is what `shop keys new KID` runs.
    """
    if not valid_kid(kid):
        raise KeyringError(f"kid {kid!r} must match {_KID.pattern}")
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = keys_dir / f"{kid}.pem"
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # Write a private temporary file, then hard-link it into place: link() fails if the name exists
    # (the O_EXCL guarantee) and, unlike creating the final name directly, a racing reader can never
    # see a half-written key.
    tmp = keys_dir / f".{kid}.{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise KeyFileExists(f"{path} already exists") from None
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(keys_dir)
    return path


def _fsync_dir(directory: Path) -> None:
    # The new name must survive a crash too, not only the file's bytes.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _load_dir(keys_dir: Path) -> dict[str, Ed25519PrivateKey]:
    if not keys_dir.is_dir():
        return {}
    keys: dict[str, Ed25519PrivateKey] = {}
    for path in sorted(keys_dir.glob("*.pem")):
        if not valid_kid(path.stem):
            raise InvalidKeyFile(path, f"the file name must be a key id matching {_KID.pattern}")
        try:
            data = path.read_bytes()
            mode = path.stat().st_mode
        except OSError as exc:
            raise InvalidKeyFile(path, f"cannot be read: {exc.strerror or exc}") from None
        if mode & 0o077:
            log.warning("signing key %s is readable by other users (mode %o); use 0600", path, mode & 0o777)
        keys[path.stem] = _parse_private_key(data, path)
    return keys


def _parse_private_key(data: bytes, source: Path | str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # TypeError: the key is encrypted. Never echo the bytes: they may be a key.
        raise InvalidKeyFile(source, "not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidKeyFile(source, f"an Ed25519 key is needed, this is {type(key).__name__}")
    return key


def _raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
