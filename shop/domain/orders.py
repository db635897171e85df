"""Order rules: the state machine, pricing and request fingerprints. No I/O.

The status machine is the one in API.md and nowhere else: PENDING → PAID → COMPLETED and
PENDING → CANCELLED. The database repeats it as a trigger, so no code path can skip this module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid5

MAX_LINES = 50
MAX_QUANTITY = 1000


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


class TooManyUnpaidOrders(OrderRuleError):
    code = "too_many_unpaid_orders"


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


@dataclass(frozen=True)
class UnpaidLimits:
    """What one customer may hold unpaid at once (stock held for 24 h is stock nobody else can buy)."""

    orders: int
    units: int


def check_unpaid(held_orders: int, held_units: int, new_units: int, limits: UnpaidLimits) -> None:
    """Refuses an order that would take the customer's unpaid orders or units past the limits."""
    if held_orders + 1 > limits.orders:
        raise TooManyUnpaidOrders(
            f"you have {held_orders} unpaid orders, the most one customer may hold;"
            " pay or cancel one before placing another"
        )
    if held_units + new_units > limits.units:
        raise TooManyUnpaidOrders(
            f"your unpaid orders hold {held_units} units and this one {new_units}; one customer may hold"
            f" at most {limits.units} unpaid; pay or cancel an order first"
        )


# The namespace of placement ids (a constant: changing it would orphan every placement link given out).
PLACEMENTS = UUID("6f1c2a8e-4b0d-5e7a-9c3f-2d8b1e0a7c45")


def placement_id(user_id: UUID, idempotency_key: str) -> UUID:
    """Where a placement can be followed: the same for every retry of one (customer, key), so a
    202's Location leads to the outcome whichever retry made the order."""
    return uuid5(PLACEMENTS, f"{user_id}:{idempotency_key}")
