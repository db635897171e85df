"""Order-side events on Kafka, version 1.0: `order.created` (to the inventory agent) and the
inventory's answers `stock.reserved` / `stock.rejected` (to the order side). A 2.x or anything that
does not parse is a poison message: dead-lettered, and the agent carries on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from shop.domain.orders import PricedLine
from shop.names import ORDER_CANCELLED as ORDER_CANCELLED
from shop.names import ORDER_COMPLETED as ORDER_COMPLETED
from shop.names import ORDER_CREATED as ORDER_CREATED
from shop.names import ORDER_PAID as ORDER_PAID
from shop.names import STOCK_REJECTED as STOCK_REJECTED
from shop.names import STOCK_RESERVED as STOCK_RESERVED
from shop.schemas.envelope import (
    MalformedEvent,
    UnknownSchemaVersion,
    decoder,
    header,
    load_object,
    major_version,
)

SCHEMA_VERSION = "1.0"


def encode_order_created(
    event_id: UUID,
    occurred_at: datetime,
    order_id: UUID,
    user_id: UUID,
    lines: Sequence[PricedLine],
    total_cents: int,
    currency: str,
) -> dict[str, Any]:
    return {
        **header(ORDER_CREATED, SCHEMA_VERSION, event_id, occurred_at),
        "order_id": str(order_id),
        "user_id": str(user_id),
        "lines": [
            {
                "product_id": str(line.product_id),
                "quantity": line.quantity,
                "unit_price_cents": line.unit_price_cents,
            }
            for line in lines
        ],
        "total_cents": total_cents,
        "currency": currency,
    }


# --- the saga's messages: order.created in, stock.reserved / stock.rejected out ----------------


@dataclass(frozen=True)
class OrderCreatedV1:
    event_id: UUID
    order_id: UUID
    lines: tuple[tuple[UUID, int], ...]  # (product id, quantity)


@dataclass(frozen=True)
class OrderNoticeV1:
    """stock.reserved, stock.rejected, order.cancelled, order.paid, order.completed: something
    happened to an order."""

    schema: str
    event_id: UUID
    order_id: UUID
    reason: str | None


def encode_order_notice(
    schema: str, event_id: UUID, occurred_at: datetime, order_id: UUID, reason: str | None
) -> dict[str, Any]:
    return {
        **header(schema, SCHEMA_VERSION, event_id, occurred_at),
        "order_id": str(order_id),
        "reason": reason,
    }


def _envelope(value: bytes | None, schema: str) -> dict[str, Any]:
    try:
        body = load_object(value)
    except MalformedEvent as exc:
        raise MalformedEvent(f"{schema}: {exc}") from None
    if body.get("schema") != schema:
        raise MalformedEvent(f"not a {schema} event")
    try:
        major = major_version(body)
    except MalformedEvent as exc:
        raise MalformedEvent(f"{schema}: {exc}") from None
    if major != 1:
        raise UnknownSchemaVersion(f"{schema} {body['schema_version']}: only 1.x is understood")
    return body


def _uuid(body: dict[str, Any], name: str) -> UUID:
    value = body.get(name)
    if not isinstance(value, str):
        raise MalformedEvent(f"{name} must be a UUID")
    try:
        return UUID(value)
    except ValueError:
        raise MalformedEvent(f"{name} must be a UUID") from None


@decoder
def decode_order_created(value: bytes | None) -> OrderCreatedV1:
    body = _envelope(value, ORDER_CREATED)
    raw_lines = body.get("lines")
    if not isinstance(raw_lines, list) or not raw_lines:
        raise MalformedEvent("order.created: lines must be a non-empty list")
    lines = []
    for line in raw_lines:
        quantity = line.get("quantity") if isinstance(line, dict) else None
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            raise MalformedEvent("order.created: each line needs a positive integer quantity")
        lines.append((_uuid(line, "product_id"), quantity))
    return OrderCreatedV1(_uuid(body, "event_id"), _uuid(body, "order_id"), tuple(lines))


@decoder
def decode_order_notice(schema: str, value: bytes | None) -> OrderNoticeV1:
    body = _envelope(value, schema)
    reason = body.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise MalformedEvent(f"{schema}: reason must be a string")
    return OrderNoticeV1(schema, _uuid(body, "event_id"), _uuid(body, "order_id"), reason)
