"""Reading a JSON request body the way the API promises: 415 for another content type, 400 for
JSON that does not parse, 422 for the wrong shape — never a 500.

Every string of every body passes `_checked_strings` on its way in, so the two kinds of text JSON can
carry but the rest of the system cannot are refused here, once: lone surrogates (`\ud800`, which no
database or SMTP server takes) and NUL characters (which no PostgreSQL text column holds)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from shop.http.errors import ApiError


async def json_object(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "send a JSON body with Content-Type: application/json")
    raw = await request.read()  # over the body limit: aiohttp raises 413 here
    try:
        body = json.loads(raw, object_pairs_hook=_checked_strings)
    except _NulCharacter:
        raise ApiError(422, "invalid_field", "strings must not contain NUL (U+0000)") from None
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ApiError(400, "malformed_json", "the body is not valid JSON (or not valid Unicode)") from None
    if not isinstance(body, dict):
        raise ApiError(422, "invalid_body", "the body must be a JSON object")
    return body


class _NulCharacter(Exception):
    pass


def _valid_unicode(value: Any) -> None:
    if isinstance(value, str):
        value.encode("utf-8")  # UnicodeEncodeError (a ValueError) on a lone surrogate
        if "\x00" in value:
            raise _NulCharacter
    elif isinstance(value, list):
        for item in value:
            _valid_unicode(item)


def _checked_strings(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    for key, value in pairs:
        _valid_unicode(key)
        _valid_unicode(value)  # nested objects were checked when they were built
    return dict(pairs)
