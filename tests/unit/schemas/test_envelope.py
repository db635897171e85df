"""The decoding every event schema shares (shop/schemas/envelope.py): each way a value can fail to
decode is `MalformedEvent`, in the product and the order decoders alike."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from shop.names import PoisonMessage
from shop.schemas.envelope import MalformedEvent, decoder, load_object, major_version
from shop.schemas.events import PRODUCT_UPDATED, decode_event
from shop.schemas.orders import ORDER_CANCELLED, ORDER_CREATED, decode_order_created, decode_order_notice

DECODERS: dict[str, Callable[[bytes], object]] = {
    PRODUCT_UPDATED: lambda value: decode_event(PRODUCT_UPDATED, value),
    ORDER_CREATED: decode_order_created,
    ORDER_CANCELLED: lambda value: decode_order_notice(ORDER_CANCELLED, value),
}


def _envelope(schema: str, version: object) -> bytes:
    return json.dumps({"schema": schema, "schema_version": version}, ensure_ascii=False).encode()


@pytest.mark.parametrize("schema", sorted(DECODERS))
@pytest.mark.parametrize("version", ["².0", "1e3.0", " 1.0", "١.0", "1.0\n", "1.²", "-1.0", "1.0.0", "1", ""])
def test_a_version_that_is_not_ascii_major_dot_minor_is_malformed(schema, version):
    with pytest.raises(MalformedEvent, match="schema_version"):
        DECODERS[schema](_envelope(schema, version))


DEEP = 100_000


@pytest.mark.parametrize("schema", sorted(DECODERS))
@pytest.mark.parametrize(
    "value",
    [b"[" * DEEP + b"]" * DEEP, b'{"a":' * DEEP + b"0" + b"}" * DEEP, b"[" * DEEP],
    ids=["lists", "objects", "unclosed"],
)
def test_deeply_nested_json_is_malformed(schema, value):
    with pytest.raises(MalformedEvent, match="not JSON"):
        DECODERS[schema](value)


@pytest.mark.parametrize("schema", sorted(DECODERS))
@pytest.mark.parametrize(
    "value",
    [b"\xff\xfe\xfa", b'{"schema": "\xc3("}', b'{"schema": "\xed\xa0\x80"}', b"\xc0\xaf", b"{\x80}"],
)
def test_invalid_utf8_is_malformed(schema, value):
    with pytest.raises(MalformedEvent, match="not JSON"):
        DECODERS[schema](value)


@pytest.mark.parametrize("text", ["\\u0000", "a\\ud800", "\\udfff", "x\\u0000y"])
@pytest.mark.parametrize("where", ["value", "key", "nested"])
def test_a_string_no_database_could_store_is_malformed(text, where):
    # Retrying a record whose handler can never store it would hold the partition forever.
    body = {
        "value": f'{{"name": "{text}"}}',
        "key": f'{{"{text}": 1}}',
        "nested": f'{{"a": [[{{"b": "{text}"}}]]}}',
    }
    with pytest.raises(MalformedEvent, match="NUL or a lone surrogate"):
        load_object(body[where].encode())


def test_a_huge_number_is_malformed_not_a_conversion_error():
    with pytest.raises(MalformedEvent, match="not JSON"):
        load_object(b'{"n": ' + b"9" * 10_000 + b"}")


def test_the_major_is_read_from_ascii_digits():
    assert major_version({"schema_version": "1.0"}) == 1
    assert major_version({"schema_version": "12.34"}) == 12
    with pytest.raises(MalformedEvent, match="missing"):
        major_version({})


def test_whatever_else_a_decoder_raises_is_malformed_but_poison_passes_through():
    @decoder
    def broken(value: bytes) -> None:
        raise {"type": TypeError, "recursion": RecursionError, "key": KeyError}[value.decode()]("boom")

    for kind in ("type", "recursion", "key"):
        with pytest.raises(MalformedEvent):
            broken(kind.encode())

    class Refused(PoisonMessage):
        pass

    @decoder
    def refusing(value: bytes) -> None:
        raise Refused("no")

    with pytest.raises(Refused):
        refusing(b"")
