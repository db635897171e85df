"""Product event schemas: what the producer encodes the consumer decodes; anything else is poison."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from shop.schemas.events import (
    PRODUCT_CREATED,
    PRODUCT_UPDATED,
    SCHEMA_VERSION,
    MalformedEvent,
    ProductEventV1,
    ProductSnapshot,
    UnknownSchemaVersion,
    decode_event,
    encode_product_event,
)
from shop.streams.runner import PoisonMessage

SNAPSHOT: dict[str, Any] = {
    "sku": "TEA-1",
    "name": "Green tea",
    "description": "Sencha, 100 g",
    "price_cents": 450,
    "currency": "EUR",
    "stock_available": 10,
    "stock_reserved": 2,
}


def _event(schema: str = PRODUCT_UPDATED, **overrides: Any) -> dict[str, Any]:
    body = encode_product_event(
        schema=schema,
        event_id=uuid.uuid4(),
        occurred_at=datetime(2026, 11, 25, 10, 0, tzinfo=UTC),
        product_id=uuid.uuid4(),
        version=2 if schema == PRODUCT_UPDATED else 1,
        type="ProductUpdated" if schema == PRODUCT_UPDATED else "ProductCreated",
        snapshot=SNAPSHOT,
    )
    body.update(overrides)
    return body


def _decode(body: Any, topic: str = PRODUCT_UPDATED) -> ProductEventV1:
    return decode_event(topic, json.dumps(body).encode())


def test_round_trip_encode_json_decode():
    event_id, product_id = uuid.uuid4(), uuid.uuid4()
    occurred_at = datetime(2026, 11, 25, 10, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1)))
    body = encode_product_event(
        schema=PRODUCT_CREATED,
        event_id=event_id,
        occurred_at=occurred_at,
        product_id=product_id,
        version=1,
        type="ProductCreated",
        snapshot={**SNAPSHOT, "id": "ignored", "version": 1},  # a projection row may carry more
    )
    assert body["schema_version"] == SCHEMA_VERSION == "1.0"
    assert set(body["data"]) == set(SNAPSHOT)

    event = decode_event(PRODUCT_CREATED, json.dumps(body).encode())

    assert event == ProductEventV1(
        schema=PRODUCT_CREATED,
        schema_version="1.0",
        event_id=event_id,
        occurred_at=occurred_at,
        product_id=product_id,
        version=1,
        type="ProductCreated",
        data=ProductSnapshot(**SNAPSHOT),
    )


def test_encode_takes_a_snapshot_dataclass_too():
    body = encode_product_event(
        PRODUCT_UPDATED,
        uuid.uuid4(),
        datetime.now(UTC),
        uuid.uuid4(),
        3,
        "StockAdjusted",
        ProductSnapshot(**SNAPSHOT),
    )
    assert decode_event(PRODUCT_UPDATED, json.dumps(body).encode()).data == ProductSnapshot(**SNAPSHOT)


def test_events_are_frozen():
    event = _decode(_event())
    with pytest.raises(AttributeError):
        event.version = 3  # type: ignore[misc]


def test_unknown_major_version_is_refused():
    with pytest.raises(UnknownSchemaVersion, match=r"2\.0"):
        _decode(_event(schema_version="2.0"))


def test_a_new_major_is_refused_whatever_its_shape():
    body = {"schema": PRODUCT_UPDATED, "schema_version": "2.0", "product": {"id": 1}}
    with pytest.raises(UnknownSchemaVersion):
        _decode(body)


def test_a_newer_minor_version_is_accepted_and_unknown_fields_are_ignored():
    body = _event(schema_version="1.7", tax_class="reduced")
    body["data"]["weight_grams"] = 100
    event = _decode(body)
    assert event.schema_version == "1.7"
    assert event.data == ProductSnapshot(**SNAPSHOT)


def test_both_errors_are_poison_messages_for_the_runner():
    assert issubclass(MalformedEvent, PoisonMessage)
    assert issubclass(UnknownSchemaVersion, PoisonMessage)


def _without(body: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != name}


def _with_data(**changes: Any) -> dict[str, Any]:
    body = _event()
    body["data"] = {**body["data"], **changes}
    return body


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe\xfa", "not JSON"),
        (b"", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b'"product.updated"', "JSON object"),
        (b"null", "JSON object"),
    ],
)
def test_values_that_are_not_json_objects_are_malformed(value, reason):
    with pytest.raises(MalformedEvent, match=reason):
        decode_event(PRODUCT_UPDATED, value)


def test_a_record_without_value_is_malformed():
    with pytest.raises(MalformedEvent, match="no value"):
        decode_event(PRODUCT_UPDATED, None)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (_without(_event(), "schema"), "schema is missing"),
        (_without(_event(), "schema_version"), "schema_version is missing"),
        (_without(_event(), "event_id"), "event_id is missing"),
        (_without(_event(), "product_id"), "product_id is missing"),
        (_without(_event(), "version"), "version is missing"),
        (_without(_event(), "data"), "data is missing"),
        (_event(data=_without(SNAPSHOT, "price_cents")), "data.price_cents is missing"),
        (_event(schema_version=1.0), "schema_version must be a string"),
        (_event(schema_version="1"), "MAJOR.MINOR"),
        (_event(schema_version="v1.0"), "MAJOR.MINOR"),
        (_event(event_id="not-a-uuid"), "event_id must be a UUID"),
        (_event(product_id=42), "product_id must be a string"),
        (_event(occurred_at="yesterday"), "ISO-8601"),
        (_event(occurred_at="2026-11-25T10:00:00"), "time zone"),
        (_event(version="2"), "version must be an integer"),
        (_event(version=0), "version must be an integer from 1"),
        (_event(version=True), "version must be an integer"),
        (_event(version=2**31), "version must be an integer"),
        (_event(type="ProductDeleted"), "type"),
        (_event(type="ProductCreated"), "not a product.updated event"),
        (_event(data=[]), "data must be an object"),
        (_with_data(price_cents=-1), "price_cents must be an integer from 0"),
        (_with_data(price_cents=4.5), "price_cents must be an integer"),
        (_with_data(price_cents="450"), "price_cents must be an integer"),
        (_with_data(stock_available=-3), "stock_available"),
        (_with_data(stock_reserved=None), "stock_reserved"),
        (_with_data(currency="eur"), "currency"),
        (_with_data(currency="EURO"), "currency"),
        (_with_data(sku=7), "sku must be a string"),
        (_with_data(name=None), "name must be a string"),
    ],
)
def test_wrong_shapes_and_types_are_malformed(body, reason):
    with pytest.raises(MalformedEvent, match=reason):
        _decode(body)


def test_a_schema_that_does_not_match_the_topic_is_malformed():
    with pytest.raises(MalformedEvent, match=r"does not belong on product\.updated"):
        _decode(_event(PRODUCT_CREATED), topic=PRODUCT_UPDATED)
    with pytest.raises(MalformedEvent, match=r"order\.created"):
        _decode(_event() | {"schema": "order.created"})


def test_the_expected_schema_can_be_given_for_another_topic():
    body = _event(PRODUCT_CREATED)
    event = decode_event("test.scratch", json.dumps(body).encode(), expected_schema=PRODUCT_CREATED)
    assert event.schema == PRODUCT_CREATED
    with pytest.raises(MalformedEvent):
        decode_event("test.scratch", json.dumps(body).encode(), expected_schema=PRODUCT_UPDATED)


def test_an_unknown_expected_schema_is_a_programming_error_not_poison():
    with pytest.raises(ValueError, match="no event schema") as info:
        decode_event("test.scratch", b"{}")
    assert not isinstance(info.value, PoisonMessage)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"schema": "order.created"}, "not a product event schema"),
        ({"occurred_at": datetime(2026, 11, 25, 10, 0)}, "time zone"),
        ({"version": 0}, "version"),
        ({"type": "ProductCreated"}, "not a product.updated event"),
        ({"snapshot": {**SNAPSHOT, "price_cents": -1}}, "price_cents"),
        ({"snapshot": {k: v for k, v in SNAPSHOT.items() if k != "currency"}}, "lacks currency"),
    ],
)
def test_the_producer_cannot_encode_what_consumers_would_refuse(changes, reason):
    kwargs: dict[str, Any] = {
        "schema": PRODUCT_UPDATED,
        "event_id": uuid.uuid4(),
        "occurred_at": datetime.now(UTC),
        "product_id": uuid.uuid4(),
        "version": 2,
        "type": "ProductUpdated",
        "snapshot": SNAPSHOT,
        **changes,
    }
    with pytest.raises(ValueError, match=reason) as info:
        encode_product_event(**kwargs)
    assert not isinstance(info.value, PoisonMessage)
