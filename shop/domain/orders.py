"""Order rules: the state machine, pricing and request fingerprints. No I/O.

The status machine is the one in API.md and nowhere else: PENDING → PAID → COMPLETED and
PENDING → CANCELLED. The database repeats it as a trigger, so no code path can skip this module.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from uuid import UUID

MAX_LINES = 50
MAX_QUANTITY = 1000
IDEMPOTENCY_KEY_MAX = 255


class Status(StrEnum):
    PENDING = "PENDING"
    PAID = "PAID"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"


class Stock(StrEnum):
    RESERVING = "reserving"
    RESERVED = "reserved"
    REJECTED = "rejected"


ALLOWED: Mapping[Status, frozenset[Status]] = {
    Status.PENDING: frozenset({Status.PAID, Status.CANCELLED}),
    Status.PAID: frozenset({Status.COMPLETED}),
    Status.COMPLETED: frozenset(),
    Status.CANCELLED: frozenset(),
}


class OrderRuleError(Exception):
    code = "invalid_order"


class InvalidOrder(OrderRuleError):
    code = "invalid_order"


class UnknownProduct(OrderRuleError):
    code = "unknown_product"


class InvalidTransition(OrderRuleError):
    code = "invalid_transition"


class OrderNotFound(OrderRuleError):
    code = "not_found"


class EventForUnknownOrder(Exception):
    """An event names an order this context has no record of (or, at the inventory, a paid order
    it holds no reservation for): the event cannot be right, and retrying will not change that."""


class StockNotReserved(OrderRuleError):
    code = "stock_not_reserved"


class InvalidIdempotencyKey(OrderRuleError):
    code = "invalid_idempotency_key"


def can_transition(current: Status, target: Status) -> bool:
    return target in ALLOWED[current]


def check_transition(current: Status, target: Status) -> None:
    if not can_transition(current, target):
        raise InvalidTransition(f"an order that is {current.value} cannot become {target.value}")


@dataclass(frozen=True)
class OrderLine:
    product_id: UUID
    quantity: int


@dataclass(frozen=True)
class Price:
    price_cents: int
    currency: str


@dataclass(frozen=True)
class PricedLine:
    product_id: UUID
    quantity: int
    unit_price_cents: int


def check_idempotency_key(key: str | None) -> str:
    """1–255 visible ASCII characters (0x21–0x7E), per API.md."""
    if (
        key is None
        or not 1 <= len(key) <= IDEMPOTENCY_KEY_MAX
        or any(not 0x21 <= ord(c) <= 0x7E for c in key)
    ):
        raise InvalidIdempotencyKey("Idempotency-Key must be 1 to 255 visible ASCII characters")
    return key


def parse_lines(body: Any) -> list[OrderLine]:
    """The `items` of a place-order body; lines of one product are merged, so a product is one line."""
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_LINES:
        raise InvalidOrder(f"items must be a list of 1 to {MAX_LINES} lines")
    merged: dict[UUID, int] = {}
    for n, item in enumerate(items):
        if not isinstance(item, dict) or set(item) != {"product_id", "quantity"}:
            raise InvalidOrder(f"items[{n}] must be {{product_id, quantity}}")
        try:
            product_id = UUID(str(item["product_id"]))
        except ValueError:
            raise InvalidOrder(f"items[{n}].product_id must be a UUID") from None
        quantity = item["quantity"]
        if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= MAX_QUANTITY:
            raise InvalidOrder(f"items[{n}].quantity must be an integer from 1 to {MAX_QUANTITY}")
        merged[product_id] = merged.get(product_id, 0) + quantity
        if merged[product_id] > MAX_QUANTITY:
            raise InvalidOrder(f"at most {MAX_QUANTITY} of one product per order")
    return [OrderLine(p, q) for p, q in merged.items()]


def price_lines(
    lines: Sequence[OrderLine], prices: Mapping[UUID, Price]
) -> tuple[list[PricedLine], int, str]:
    """(priced lines, total in minor units, currency). One order has one currency."""
    unknown = [str(line.product_id) for line in lines if line.product_id not in prices]
    if unknown:
        raise UnknownProduct(f"unknown product(s): {', '.join(unknown)}")
    currencies = {prices[line.product_id].currency for line in lines}
    if len(currencies) != 1:
        raise InvalidOrder("all products of one order must share a currency")
    priced = [
        PricedLine(line.product_id, line.quantity, prices[line.product_id].price_cents) for line in lines
    ]
    return priced, sum(line.quantity * line.unit_price_cents for line in priced), currencies.pop()


def request_fingerprint(body: Any) -> str:
    """A hash of the request's meaning: key order and whitespace do not change it."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
