"""Catalog rules, event-sourced: a product is the fold of its events. No I/O.

Events are past tense (`ProductCreated`, `ProductUpdated`, `StockAdjusted`); each carries only what
changed, and `apply` turns a state and an event into the next state. The projection table and
`shop replay products` both use `apply`, so they cannot disagree about what an event means.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID

CREATED = "ProductCreated"
UPDATED = "ProductUpdated"
STOCK_ADJUSTED = "StockAdjusted"
# The inventory saga: an order's units move from available to reserved, then back (released) or out (sold).
STOCK_RESERVED = "StockReserved"
STOCK_RELEASED = "StockReleased"
STOCK_SOLD = "StockSold"
# Events that change nothing but the stock: no sku, name or price moves with them.
STOCK_ONLY_EVENTS = frozenset({STOCK_ADJUSTED, STOCK_RESERVED, STOCK_RELEASED, STOCK_SOLD})
PATCHABLE = ("name", "description", "price_cents", "currency")
MAX_STOCK = 1_000_000_000
MAX_PRICE_CENTS = 2_000_000_000
NAME_MAX, DESCRIPTION_MAX = 200, 5000
# Whole-string patterns; the API's JSON Schemas anchor the same ones.
SKU_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
CURRENCY_PATTERN = r"[A-Z]{3}"

_SKU = re.compile(SKU_PATTERN)
_CURRENCY = re.compile(CURRENCY_PATTERN)


class CatalogError(Exception):
    code = "invalid_product"


class InvalidProduct(CatalogError):
    code = "invalid_product"


class ProductNotFound(CatalogError):
    code = "not_found"


class DuplicateSku(CatalogError):
    code = "duplicate_sku"


class VersionConflict(CatalogError):
    code = "version_conflict"


class StockBelowReserved(CatalogError):
    code = "stock_below_reserved"


class InsufficientStock(CatalogError):
    code = "out_of_stock"


@dataclass(frozen=True)
class Product:
    id: UUID
    sku: str
    name: str
    description: str
    price_cents: int
    currency: str
    stock_available: int
    stock_reserved: int
    version: int
    created_at: datetime
    updated_at: datetime

    def snapshot(self) -> dict[str, Any]:
        """The product's fields as event consumers see them."""
        return {
            "sku": self.sku,
            "name": self.name,
            "description": self.description,
            "price_cents": self.price_cents,
            "currency": self.currency,
            "stock_available": self.stock_available,
            "stock_reserved": self.stock_reserved,
        }


@dataclass(frozen=True)
class Event:
    type: str
    data: dict[str, Any]


def _check_text(name: str, value: Any, max_length: int, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or (not allow_empty and not value.strip()) or len(value) > max_length:
        limit = f"0 to {max_length}" if allow_empty else f"1 to {max_length}"
        raise InvalidProduct(f"{name} must be a string of {limit} characters")
    return value


def _check_int(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidProduct(f"{name} must be an integer from {low} to {high}")
    return value


def _check_field(name: str, value: Any) -> Any:
    if name == "name":
        return _check_text("name", value, NAME_MAX)
    if name == "description":
        return _check_text("description", value, DESCRIPTION_MAX, allow_empty=True)
    if name == "price_cents":
        return _check_int("price_cents", value, 0, MAX_PRICE_CENTS)
    if name == "currency":
        if not isinstance(value, str) or not _CURRENCY.fullmatch(value):
            raise InvalidProduct("currency must be three capital letters (ISO 4217), e.g. EUR")
        return value
    raise InvalidProduct(f"{name} cannot be changed")


def create_product(fields: dict[str, Any]) -> Event:
    """The event that creates a product from an admin's request body."""
    sku = fields.get("sku")
    if not isinstance(sku, str) or not _SKU.fullmatch(sku):
        raise InvalidProduct(
            "sku must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    unknown = set(fields) - {"sku", "stock", *PATCHABLE}
    if unknown:
        raise InvalidProduct(f"unknown field(s): {', '.join(sorted(unknown))}")
    data: dict[str, Any] = {"sku": sku}
    for name in PATCHABLE:
        if name not in fields:
            if name == "description":
                data[name] = ""
                continue
            raise InvalidProduct(f"{name} is required")
        data[name] = _check_field(name, fields[name])
    data["stock"] = _check_int("stock", fields.get("stock", 0), 0, MAX_STOCK)
    return Event(CREATED, data)


def patch_product(product: Product, changes: dict[str, Any], expected_version: int) -> Event | None:
    """The event for an admin's partial update, or None when nothing would change."""
    if expected_version != product.version:
        raise VersionConflict(f"the product is at version {product.version}, not {expected_version}")
    if not changes:
        raise InvalidProduct(f"send at least one of: {', '.join(PATCHABLE)}")
    checked = {name: _check_field(name, value) for name, value in changes.items()}
    changed = {k: v for k, v in checked.items() if getattr(product, k) != v}
    return Event(UPDATED, changed) if changed else None


def adjust_stock(product: Product, delta: Any) -> Event:
    """Restock (positive) or write off (negative); never below what orders have reserved."""
    delta = _check_int("delta", delta, -MAX_STOCK, MAX_STOCK)
    if delta == 0:
        raise InvalidProduct("delta must not be 0")
    if product.stock_available + delta < 0:
        raise StockBelowReserved(
            f"only {product.stock_available} unreserved in stock ({product.stock_reserved} reserved); "
            f"cannot write off {-delta}"
        )
    if product.stock_available + delta > MAX_STOCK:
        raise InvalidProduct(f"stock cannot exceed {MAX_STOCK}")
    return Event(STOCK_ADJUSTED, {"delta": delta})


def reserve(product: Product, order_id: UUID, quantity: int) -> Event:
    """Units for an order; all-or-nothing across an order's lines is the caller's transaction."""
    if quantity > product.stock_available:
        raise InsufficientStock(f"{product.sku}: {quantity} wanted, {product.stock_available} available")
    return Event(STOCK_RESERVED, {"order_id": str(order_id), "quantity": quantity})


def release(order_id: UUID, quantity: int) -> Event:
    return Event(STOCK_RELEASED, {"order_id": str(order_id), "quantity": quantity})


def sell(order_id: UUID, quantity: int) -> Event:
    return Event(STOCK_SOLD, {"order_id": str(order_id), "quantity": quantity})


def apply(product: Product | None, event: Event, product_id: UUID, version: int, at: datetime) -> Product:
    """The state after `event`. The fold of every event of a product, in version order, is the product."""
    if event.type == CREATED:
        if product is not None:
            raise ValueError(f"product {product_id} created twice")
        d = event.data
        return Product(
            product_id,
            d["sku"],
            d["name"],
            d["description"],
            d["price_cents"],
            d["currency"],
            stock_available=d["stock"],
            stock_reserved=0,
            version=version,
            created_at=at,
            updated_at=at,
        )
    if product is None:
        raise ValueError(f"{event.type} before {CREATED} for product {product_id}")
    if version != product.version + 1:
        raise ValueError(f"product {product_id}: version {version} follows {product.version}")
    if event.type == UPDATED:
        return replace(product, **event.data, version=version, updated_at=at)
    if event.type == STOCK_ADJUSTED:
        return replace(
            product,
            stock_available=product.stock_available + event.data["delta"],
            version=version,
            updated_at=at,
        )
    moves = {  # (change to available, change to reserved) per unit
        STOCK_RESERVED: (-1, +1),
        STOCK_RELEASED: (+1, -1),
        STOCK_SOLD: (0, -1),
    }
    if event.type in moves:
        to_available, to_reserved = moves[event.type]
        quantity = event.data["quantity"]
        available = product.stock_available + to_available * quantity
        reserved = product.stock_reserved + to_reserved * quantity
        if available < 0 or reserved < 0:
            raise ValueError(f"product {product_id}: {event.type} would make stock negative")
        return replace(
            product, stock_available=available, stock_reserved=reserved, version=version, updated_at=at
        )
    raise ValueError(f"unknown event type {event.type!r}")
