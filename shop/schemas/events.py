"""Event schemas as code: what producers write to Kafka and what consumers accept, defined once.

Every event value is a JSON object naming its `schema` (equal to the topic's name on the project's
topics) and its `schema_version` as "MAJOR.MINOR". The versioning rule:

- A MINOR version only adds optional fields. A reader of major M accepts every M.x, older or newer
  than its own, and ignores fields it does not know (in the envelope and in `data` alike).
- Anything a reader could misread (a field removed, renamed, retyped or given a new meaning) is a
  new MAJOR version. A reader that does not support a major raises `UnknownSchemaVersion`; during a
  migration, producers publish the new major only once every consumer reads it.

A value that is not JSON, not an object, lacks a field, has a field of the wrong type or range, or
names another schema than the one expected raises `MalformedEvent`, and so does any other failure
to decode it (shop/schemas/envelope.py). Both errors are `PoisonMessage`s, so the stream runner
dead-letters the message and carries on.

Integers are JSON integers (not floats, not booleans) that fit a signed 32-bit integer, so every
consumer can store them in a PostgreSQL `integer`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from shop.names import PRODUCT_CREATED as PRODUCT_CREATED
from shop.names import PRODUCT_UPDATED as PRODUCT_UPDATED
from shop.schemas.envelope import MalformedEvent as MalformedEvent  # the poison errors, re-exported
from shop.schemas.envelope import UnknownSchemaVersion as UnknownSchemaVersion
from shop.schemas.envelope import decoder, header, load_object, major_version

SCHEMA_VERSION = "1.0"  # what producers of product events write today

# The event types each product schema carries: creation opens a product's stream, every later event
# (an edit, a stock adjustment) is an update of it.
PRODUCT_EVENT_TYPES: Mapping[str, frozenset[str]] = {
    PRODUCT_CREATED: frozenset({"ProductCreated"}),
    PRODUCT_UPDATED: frozenset(
        {"ProductUpdated", "StockAdjusted", "StockReserved", "StockReleased", "StockSold"}
    ),
}

MAX_INT = 2**31 - 1
_CURRENCY = re.compile(r"[A-Z]{3}")


@dataclass(frozen=True)
class ProductSnapshot:
    """The whole product after the event."""

    sku: str
    name: str
    description: str
    price_cents: int
    currency: str
    stock_available: int
    stock_reserved: int


@dataclass(frozen=True)
class ProductEventV1:
    """`product.created` / `product.updated`, major version 1."""

    schema: str
    schema_version: str  # as received, e.g. "1.0" or "1.3"
    event_id: UUID
    occurred_at: datetime
    product_id: UUID
    version: int  # the product's version after this event
    type: str
    data: ProductSnapshot


# --- reading fields: each raises MalformedEvent naming the field ---------------------------------


def _field(obj: Mapping[str, Any], name: str, where: str) -> Any:
    if name not in obj:
        raise MalformedEvent(f"{where}{name} is missing")
    return obj[name]


def _str(obj: Mapping[str, Any], name: str, where: str = "") -> str:
    value = _field(obj, name, where)
    if not isinstance(value, str):
        raise MalformedEvent(f"{where}{name} must be a string")
    return value


def _int(obj: Mapping[str, Any], name: str, low: int, where: str = "") -> int:
    value = _field(obj, name, where)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_INT:
        raise MalformedEvent(f"{where}{name} must be an integer from {low} to {MAX_INT}")
    return value


def _uuid(obj: Mapping[str, Any], name: str) -> UUID:
    text = _str(obj, name)
    try:
        return UUID(text)
    except ValueError:
        raise MalformedEvent(f"{name} must be a UUID") from None


def _timestamp(obj: Mapping[str, Any], name: str) -> datetime:
    text = _str(obj, name)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise MalformedEvent(f"{name} must be an ISO-8601 timestamp") from None
    if value.tzinfo is None:
        raise MalformedEvent(f"{name} must carry a time zone")
    return value


def _object(obj: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = _field(obj, name, "")
    if not isinstance(value, dict):
        raise MalformedEvent(f"{name} must be an object")
    return value


# --- product events, major 1 ------------------------------------------------------------------


def _product_snapshot_v1(data: Mapping[str, Any]) -> ProductSnapshot:
    currency = _str(data, "currency", "data.")
    if not _CURRENCY.fullmatch(currency):
        raise MalformedEvent("data.currency must be three capital letters (ISO 4217)")
    return ProductSnapshot(
        sku=_str(data, "sku", "data."),
        name=_str(data, "name", "data."),
        description=_str(data, "description", "data."),
        price_cents=_int(data, "price_cents", 0, "data."),
        currency=currency,
        stock_available=_int(data, "stock_available", 0, "data."),
        stock_reserved=_int(data, "stock_reserved", 0, "data."),
    )


def _product_event_v1(body: Mapping[str, Any]) -> ProductEventV1:
    schema = _str(body, "schema")
    event_type = _str(body, "type")
    types = PRODUCT_EVENT_TYPES.get(schema, frozenset())
    if event_type not in types:
        allowed = ", ".join(sorted(types))
        raise MalformedEvent(f"type {event_type!r} is not a {schema} event (expected {allowed})")
    return ProductEventV1(
        schema=schema,
        schema_version=_str(body, "schema_version"),
        event_id=_uuid(body, "event_id"),
        occurred_at=_timestamp(body, "occurred_at"),
        product_id=_uuid(body, "product_id"),
        version=_int(body, "version", 1),
        type=event_type,
        data=_product_snapshot_v1(_object(body, "data")),
    )


# --- the registry: schema name -> {supported major: parser} ---------------------------------------

Parser = Callable[[Mapping[str, Any]], ProductEventV1]

SCHEMAS: Mapping[str, Mapping[int, Parser]] = {
    PRODUCT_CREATED: {1: _product_event_v1},
    PRODUCT_UPDATED: {1: _product_event_v1},
}


def decode_event(topic: str, value: bytes | None, expected_schema: str | None = None) -> ProductEventV1:
    """The event in a Kafka record's value, which must be of `expected_schema` (by default the
    topic's name: on the project's topics the two are equal; tests map scratch topics).

    Raises `MalformedEvent` or `UnknownSchemaVersion` (both `PoisonMessage`), see the module notes.
    """
    expected = topic if expected_schema is None else expected_schema
    parsers = SCHEMAS.get(expected)
    if parsers is None:
        # The caller wired a topic to a schema that does not exist: a bug, not a bad message.
        raise ValueError(f"no event schema named {expected!r}; known: {', '.join(sorted(SCHEMAS))}")
    return _decode_event(topic, value, expected, parsers)


@decoder
def _decode_event(
    topic: str, value: bytes | None, expected: str, parsers: Mapping[int, Parser]
) -> ProductEventV1:
    body = load_object(value)
    schema = _str(body, "schema")
    if schema != expected:
        raise MalformedEvent(f"schema {schema!r} does not belong on {topic} (expected {expected!r})")
    major = major_version(body)
    parse = parsers.get(major)
    if parse is None:
        supported = ", ".join(f"{m}.x" for m in sorted(parsers))
        version = body["schema_version"]
        raise UnknownSchemaVersion(f"{schema} schema_version {version} is not supported (reads {supported})")
    return parse(body)


def encode_product_event(
    schema: str,
    event_id: UUID,
    occurred_at: datetime,
    product_id: UUID,
    version: int,
    type: str,
    snapshot: Mapping[str, Any] | ProductSnapshot,
) -> dict[str, Any]:
    """The JSON-able value of a product event, at `SCHEMA_VERSION`. `snapshot` is the whole product
    after the event; only the schema's fields are taken from it.

    Raises `ValueError` for anything the consumers' decoder would refuse, so a producer can never
    publish a message that every reader dead-letters.
    """
    if schema not in (PRODUCT_CREATED, PRODUCT_UPDATED):
        raise ValueError(f"{schema!r} is not a product event schema")
    if occurred_at.tzinfo is None:
        raise ValueError("occurred_at must carry a time zone")
    fields = dataclasses.asdict(snapshot) if isinstance(snapshot, ProductSnapshot) else snapshot
    names = [f.name for f in dataclasses.fields(ProductSnapshot)]
    missing = [name for name in names if name not in fields]
    if missing:
        raise ValueError(f"snapshot lacks {', '.join(missing)}")
    body = {
        **header(schema, SCHEMA_VERSION, event_id, occurred_at),
        "product_id": str(product_id),
        "version": version,
        "type": type,
        "data": {name: fields[name] for name in names},
    }
    try:
        _product_event_v1(body)  # the consumers' own check
    except MalformedEvent as exc:
        raise ValueError(f"invalid {schema} event: {exc}") from None
    return body
