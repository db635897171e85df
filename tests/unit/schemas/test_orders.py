"""Order-side event schemas: a good event decodes, and every value that cannot be decoded is poison
(`MalformedEvent`), never another exception that would make the runner retry it forever."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from shop.domain.orders import PricedLine
from shop.schemas.events import MalformedEvent, UnknownSchemaVersion
from shop.schemas.orders import (
    ORDER_CREATED,
    STOCK_RESERVED,
    decode_order_created,
    decode_order_notice,
    encode_order_created,
    encode_order_notice,
)

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def _created(**overrides: Any) -> dict[str, Any]:
    line = PricedLine(uuid.uuid4(), 2, 450)
    body = encode_order_created(uuid.uuid4(), NOW, uuid.uuid4(), uuid.uuid4(), [line], 900, "EUR")
    return body | overrides


def _notice(**overrides: Any) -> dict[str, Any]:
    return encode_order_notice(STOCK_RESERVED, uuid.uuid4(), NOW, uuid.uuid4(), None) | overrides


def _encoded(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()


def test_round_trips():
    body = _created()
    event = decode_order_created(_encoded(body))
    assert str(event.order_id) == body["order_id"]
    assert event.lines == ((uuid.UUID(body["lines"][0]["product_id"]), 2),)
    notice = decode_order_notice(STOCK_RESERVED, _encoded(_notice(reason="because")))
    assert notice.reason == "because"


def test_a_newer_minor_is_read_and_a_new_major_is_refused():
    assert decode_order_created(_encoded(_created(schema_version="1.7")))
    with pytest.raises(UnknownSchemaVersion):
        decode_order_created(_encoded(_created(schema_version="2.0")))


# Each passes str.isdigit() on its major, or looks like a number to int(), but none is MAJOR.MINOR
# in ASCII digits.
ODD_VERSIONS = ["².0", "1e3.0", " 1.0", "1.0 ", "١.0", "1", "+1.0", "1_0.0", "01.0", "1.x", "", 1.0, None]


@pytest.mark.parametrize("version", ODD_VERSIONS)
def test_an_odd_schema_version_is_malformed(version):
    with pytest.raises(MalformedEvent, match="schema_version"):
        decode_order_created(_encoded(_created(schema_version=version)))
    with pytest.raises(MalformedEvent, match="schema_version"):
        decode_order_notice(STOCK_RESERVED, _encoded(_notice(schema_version=version)))


DEPTH = 100_000


@pytest.mark.parametrize(
    "value",
    [
        b"[" * DEPTH + b"]" * DEPTH,
        b'{"a":' * DEPTH + b"1" + b"}" * DEPTH,
        # Within the parser's depth but where a UUID should be.
        _encoded(_created(event_id=[])).replace(b"[]", b"[" * 500 + b"]" * 500),
        _encoded(_created(lines=[])).replace(b"[]", b"[" * DEPTH + b"]" * DEPTH),
    ],
    ids=["lists", "objects", "deep event_id", "deep lines"],
)
def test_deeply_nested_json_is_malformed(value):
    with pytest.raises(MalformedEvent):
        decode_order_created(value)
    with pytest.raises(MalformedEvent):
        decode_order_notice(STOCK_RESERVED, value)


@pytest.mark.parametrize("value", [b"\xff\xfe\xfa", b'{"schema": "order.created\xc3"}', b"\xed\xa0\x80", b""])
def test_undecodable_bytes_are_malformed(value):
    with pytest.raises(MalformedEvent, match="not JSON"):
        decode_order_created(value)


@pytest.mark.parametrize(
    "body",
    [
        None,
        [1, 2],
        _created(schema=STOCK_RESERVED),
        _created(event_id=42),
        _created(event_id={"a": 1}),
        _created(order_id="x"),
        _created(lines=[{"product_id": str(uuid.uuid4()), "quantity": 1.5}]),
        _created(lines=[{"product_id": [1], "quantity": 1}]),
        _created(lines=["x"]),
    ],
)
def test_wrong_shapes_are_malformed(body):
    with pytest.raises(MalformedEvent):
        decode_order_created(_encoded(body))


def test_no_value_is_malformed():
    with pytest.raises(MalformedEvent):
        decode_order_created(None)
    with pytest.raises(MalformedEvent):
        decode_order_notice(ORDER_CREATED, None)
