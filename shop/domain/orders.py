"""Order rules: the state machine, pricing, and what paying, cancelling, completing an order and the
inventory's answer do to it. No I/O.

The status machine is the one in API.md and nowhere else: PENDING → PAID → COMPLETED and
PENDING → CANCELLED (`ALLOWED`). As in the catalog (shop/domain/products.py), a pure function decides
the event (`pay`, `cancel`, `complete`, `settle_stock`) and `apply` folds it into the order, checking
every change of status against `ALLOWED`. The database repeats the table as a trigger, the last line
of defence for a write that went around this module; an integration test holds the two equal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
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


class CancelReason(StrEnum):
    CUSTOMER_REQUEST = "customer_request"
    OUT_OF_STOCK = "out_of_stock"
    PAYMENT_TIMEOUT = "payment_timeout"


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
class Order:
    """What the rules of an order read, and its events change."""

    id: UUID
    user_id: UUID
    status: Status
    stock: Stock
    expires_at: datetime
    cancel_reason: CancelReason | None = None
    payment_reference: str | None = None
    paid_at: datetime | None = None


# Events, past tense, each carrying only what changed.


@dataclass(frozen=True)
class OrderPaid:
    payment_reference: str


@dataclass(frozen=True)
class OrderCancelled:
    reason: CancelReason


@dataclass(frozen=True)
class OrderCompleted:
    pass


@dataclass(frozen=True)
class StockSettled:
    """The inventory's answer: the order's stock `reserved` or `rejected`."""

    stock: Stock


OrderEvent = OrderPaid | OrderCancelled | OrderCompleted | StockSettled


def pay(order: Order, payment_reference: str, now: datetime) -> OrderPaid | None:
    """PENDING with stock reserved → PAID; None for the same payment again (harmless)."""
    if order.status is Status.PAID and order.payment_reference == payment_reference:
        return None
    check_transition(order.status, Status.PAID)
    if now >= order.expires_at:
        # Its expiry timer is about to cancel it; a payment now would race that and lose.
        raise InvalidTransition(f"the order expired at {order.expires_at.isoformat()}; it cannot be paid")
    if order.stock is not Stock.RESERVED:
        raise StockNotReserved("the order's stock is not reserved yet; try again shortly")
    return OrderPaid(payment_reference)


def cancel(order: Order, reason: CancelReason) -> OrderCancelled:
    """PENDING → CANCELLED; the order.cancelled it causes makes the inventory release its stock."""
    check_transition(order.status, Status.CANCELLED)
    return OrderCancelled(reason)


def complete(order: Order) -> OrderCompleted:
    check_transition(order.status, Status.COMPLETED)
    return OrderCompleted()


def settle_stock(order: Order, outcome: Stock) -> list[OrderEvent]:
    """The inventory's answer to an order whose stock is `reserving`: the outcome recorded, and an
    order that can still be cancelled cancelled (`out_of_stock`) when its stock was rejected. An
    order that ended first (the customer cancelled it, or it expired) keeps its status, the outcome
    recorded all the same, so that no order is left `reserving`. Nothing for an order settled already
    (a late or repeated answer)."""
    if outcome is Stock.RESERVING:
        raise ValueError("the inventory answers reserved or rejected")
    if order.stock is not Stock.RESERVING:
        return []
    if outcome is Stock.REJECTED and can_transition(order.status, Status.CANCELLED):
        return [StockSettled(outcome), OrderCancelled(CancelReason.OUT_OF_STOCK)]
    return [StockSettled(outcome)]


def apply(order: Order, event: OrderEvent, at: datetime) -> Order:
    """The order after `event`; a change of status `ALLOWED` does not permit raises `InvalidTransition`."""
    if isinstance(event, StockSettled):
        return replace(order, stock=event.stock)
    if isinstance(event, OrderPaid):
        check_transition(order.status, Status.PAID)
        return replace(order, status=Status.PAID, payment_reference=event.payment_reference, paid_at=at)
    if isinstance(event, OrderCancelled):
        check_transition(order.status, Status.CANCELLED)
        return replace(order, status=Status.CANCELLED, cancel_reason=event.reason)
    check_transition(order.status, Status.COMPLETED)
    return replace(order, status=Status.COMPLETED)


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
