"""What every event shares: the header every encoder writes (`header`), and for every decoder the
two poison errors, reading a record's value as a JSON object, and reading its `schema_version`.

Decoding is a pure function of the record's bytes, so an exception it raises is raised again on
every retry and would hold the partition forever. Every decoding failure is therefore poison:
`decoder` turns whatever escapes a decode function (a `RecursionError` from deeply nested JSON, a
`TypeError` from a shape nobody thought of) into `MalformedEvent`.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, ParamSpec, TypeVar
from uuid import UUID

from shop.names import PoisonMessage

# ASCII digits only, no sign, space or leading zero: int() and str.isdigit() accept far more
# ("²", "١", " 1", "1_0"), and a version either means exactly one number or is malformed.
_VERSION = re.compile(r"(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})")


def header(schema: str, schema_version: str, event_id: UUID, occurred_at: datetime) -> dict[str, Any]:
    """The fields every event starts with, as its producer writes them."""
    return {
        "schema": schema,
        "schema_version": schema_version,
        "event_id": str(event_id),
        "occurred_at": occurred_at.isoformat(),
    }


class MalformedEvent(PoisonMessage):
    """Not an event of the expected schema: not JSON, wrong shape or types, or another schema."""


class UnknownSchemaVersion(PoisonMessage):
    """A well-formed envelope whose major schema version this reader does not support."""


def load_object(value: bytes | None) -> dict[str, Any]:
    """The JSON object in a record's value, UTF-8 whose every string a PostgreSQL text can hold."""
    if value is None:
        raise MalformedEvent("the record has no value")
    try:
        # Strict UTF-8 first: json.loads(bytes) would let encoded surrogates through.
        body = json.loads(value.decode("utf-8"))
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise MalformedEvent(f"not JSON: {str(exc)[:200]}") from None
    except RecursionError:
        raise MalformedEvent("not JSON: nested too deeply") from None
    if not isinstance(body, dict):
        raise MalformedEvent(f"the value must be a JSON object, not {type(body).__name__}")
    if _has_unstorable_text(body):
        # A handler could never store it (PostgreSQL refuses NUL and invalid UTF-8): retrying it
        # would hold the partition forever.
        raise MalformedEvent("not JSON text: a string holds NUL or a lone surrogate (a \\u escape)")
    return body


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _has_unstorable_text(body: Any) -> bool:
    pending = [body]  # a loop, not recursion: the value may nest as deep as the parser allowed
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if _UNSTORABLE.search(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def major_version(body: dict[str, Any]) -> int:
    """The MAJOR of the envelope's `schema_version` "MAJOR.MINOR"."""
    if "schema_version" not in body:
        raise MalformedEvent("schema_version is missing")
    version = body["schema_version"]
    if not isinstance(version, str):
        raise MalformedEvent("schema_version must be a string")
    match = _VERSION.fullmatch(version)
    if not match:
        raise MalformedEvent(f"schema_version {version!r} is not MAJOR.MINOR")
    return int(match[1])


P = ParamSpec("P")
R = TypeVar("R")


def decoder(decode: Callable[P, R]) -> Callable[P, R]:
    """`decode`, with every failure but a MemoryError (which a retry may not meet again) poison."""

    @functools.wraps(decode)
    def decoding(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return decode(*args, **kwargs)
        except (PoisonMessage, MemoryError):
            raise
        except RecursionError:
            raise MalformedEvent("nested too deeply") from None
        except Exception as exc:
            raise MalformedEvent(f"cannot be decoded: {type(exc).__name__}: {str(exc)[:200]}") from exc

    return decoding
