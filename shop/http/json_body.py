"""Reading a JSON request body the way the API promises: 415 for another content type, 400 for
JSON that does not parse, 422 for the wrong shape — never a 500."""

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
        # A `\ud800` escape parses to a lone surrogate, which no database or SMTP server can take:
        # refused here, where every string of every body passes.
        body = json.loads(raw, object_pairs_hook=_no_surrogates)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ApiError(400, "malformed_json", "the body is not valid JSON (or not valid Unicode)") from None
    if not isinstance(body, dict):
        raise ApiError(422, "invalid_body", "the body must be a JSON object")
    return body


def _valid_unicode(value: Any) -> None:
    if isinstance(value, str):
        value.encode("utf-8")  # UnicodeEncodeError (a ValueError) on a lone surrogate
    elif isinstance(value, list):
        for item in value:
            _valid_unicode(item)


def _no_surrogates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    for key, value in pairs:
        _valid_unicode(key)
        _valid_unicode(value)  # nested objects were checked when they were built
    return dict(pairs)


def text_field(body: dict[str, Any], name: str, max_length: int = 1024) -> str:
    value = body.get(name)
    if value is None:
        raise ApiError(422, "missing_field", f"{name} is required")
    if not isinstance(value, str):
        raise ApiError(422, "invalid_field", f"{name} must be a string")
    if len(value) > max_length:
        raise ApiError(422, "invalid_field", f"{name} is longer than {max_length} characters")
    return value
