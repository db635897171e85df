"""Inventory rules, the catalog's side of the order saga: an order's lines reserved all or none, and
a reservation settled (released back when the order is cancelled, sold when it is paid). No I/O.

The stock moves themselves are product events (shop.domain.products: `reserve`, `release`, `sell`);
this module decides which of them an order's message causes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from shop.domain.products import Event, InsufficientStock, Product, release, reserve, sell

# What the order side hears when the order's cancellation arrived before its order.created.
CANCELLED_FIRST = "the order was cancelled before its stock was reserved"


class Held(StrEnum):
    """The state of one reserved line (a row of `stock_reservations`)."""

    RESERVED = "reserved"
    RELEASED = "released"
    SOLD = "sold"


class Answer(StrEnum):
    """What handling an order.created came to."""

    RESERVED = "reserved"
    REJECTED = "rejected"  # a line could not be held: nothing held
    CANCELLED = "cancelled"  # its cancellation came first: nothing held, the order side told `rejected`
    DUPLICATE = "duplicate"  # handled before: nothing done


def before_reserving(reserved_before: bool, cancelled: bool) -> Answer | None:
    """The answer to an order.created whose order holds stock already or was cancelled; None when
    its lines are to be reserved."""
    if reserved_before:
        return Answer.DUPLICATE
    if cancelled:
        return Answer.CANCELLED
    return None


@dataclass(frozen=True)
class Reservation:
    """The stock events of an order's lines, each with the product before it; or, when a line
    cannot be held, none and the reason."""

    events: list[tuple[Product, Event]]
    rejected: str | None = None


def reserve_lines(
    order_id: UUID, quantities: Mapping[UUID, int], products: Sequence[Product | None]
) -> Reservation:
    """Every line or none: `products` are those of `quantities`, in product id order (as the caller
    locked them), None for a product the catalog does not have."""
    events = []
    for product_id, product in zip(sorted(quantities), products, strict=True):
        if product is None:
            return Reservation([], f"unknown product {product_id}")
        try:
            events.append((product, reserve(product, order_id, quantities[product_id])))
        except InsufficientStock as exc:
            return Reservation([], f"out of stock: {exc}")
    return Reservation(events)


def settle(order_id: UUID, quantity: int, to: Held) -> Event:
    """The stock event of one reserved line leaving `reserved`: released back, or sold."""
    if to is Held.RELEASED:
        return release(order_id, quantity)
    if to is Held.SOLD:
        return sell(order_id, quantity)
    raise ValueError(f"a reservation is settled as released or sold, not {to}")
