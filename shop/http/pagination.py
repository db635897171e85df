"""Opaque cursors for keyset pagination over UUIDv7 ids, and the `limit` parameter."""

from __future__ import annotations

import base64
import binascii
from uuid import UUID

from shop.http.errors import ApiError

DEFAULT_LIMIT, MAX_LIMIT = 20, 100


def page_limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise ApiError(422, "invalid_limit", f"limit must be an integer from 1 to {MAX_LIMIT}")
    return int(raw)


def encode_cursor(last_id: UUID) -> str:
    return base64.urlsafe_b64encode(last_id.bytes).rstrip(b"=").decode()


def decode_cursor(raw: str | None) -> UUID | None:
    """None for no cursor (the first page); an empty `cursor=` is as wrong as a garbled one."""
    if raw is None:
        return None
    try:
        return UUID(bytes=base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (ValueError, binascii.Error):
        raise ApiError(400, "invalid_cursor", "cursor must be a next_cursor this API returned") from None
