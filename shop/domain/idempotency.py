"""Idempotency keys: what a client may send as `Idempotency-Key`, and what makes two requests the same.

A command that carries a key is done once per (caller, key): the same key with the same request
answers what the first one did, the same key with another request is refused. No I/O.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

IDEMPOTENCY_KEY_MAX = 255


class IdempotencyError(Exception):
    code = "idempotency_error"


class InvalidIdempotencyKey(IdempotencyError):
    code = "invalid_idempotency_key"


class IdempotencyKeyReused(IdempotencyError):
    code = "idempotency_key_reused"


def check_idempotency_key(key: str | None) -> str:
    """1–255 visible ASCII characters (0x21–0x7E): the Idempotency-Key of docs/contract.md#request-headers."""
    if (
        key is None
        or not 1 <= len(key) <= IDEMPOTENCY_KEY_MAX
        or any(not 0x21 <= ord(c) <= 0x7E for c in key)
    ):
        raise InvalidIdempotencyKey("Idempotency-Key must be 1 to 255 visible ASCII characters")
    return key


def request_fingerprint(body: Any) -> str:
    """A hash of the request's meaning: key order and whitespace do not change it. Callers put
    everything that makes the request what it is into `body` (e.g. the route and its parameters)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def key_digest(key: str) -> str:
    """How a key is stored and locked: a fixed-size name that says nothing about the key."""
    return hashlib.sha256(key.encode()).hexdigest()
