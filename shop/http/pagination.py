"""Opaque cursors for keyset pagination over UUIDv7 ids, and the bounds of the `limit` parameter
(checked against its schema, shop/http/schemas.py)."""

from __future__ import annotations

import base64
import binascii
from uuid import UUID

from shop.http.errors import ApiError

DEFAULT_LIMIT, MAX_LIMIT = 20, 100
# What encode_cursor writes (16 bytes, URL-safe base64 without padding), and all that decode_cursor
# is given: the parameter's schema anchors it, so no other text reaches a handler.
CURSOR_PATTERN = "[A-Za-z0-9_-]{22}"


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
