from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from shop.domain.inventory import Answer, Held, before_reserving, reserve_lines, settle
from shop.domain.products import STOCK_RELEASED, STOCK_RESERVED, STOCK_SOLD, Product

T0 = datetime(2026, 11, 25, tzinfo=UTC)
ORDER = uuid.uuid4()


def product(available: int) -> Product:
    return Product(uuid.uuid4(), "SKU-1", "Pot", "", 100, "EUR", available, 0, 1, T0, T0)


def test_an_order_holding_stock_already_is_a_duplicate_and_one_cancelled_first_holds_nothing():
    assert before_reserving(reserved_before=True, cancelled=False) is Answer.DUPLICATE
    assert before_reserving(reserved_before=True, cancelled=True) is Answer.DUPLICATE
    assert before_reserving(reserved_before=False, cancelled=True) is Answer.CANCELLED
    assert before_reserving(reserved_before=False, cancelled=False) is None


def test_every_line_is_reserved_in_product_id_order():
    a, b = sorted([product(10), product(10)], key=lambda p: p.id)
    reservation = reserve_lines(ORDER, {b.id: 2, a.id: 3}, [a, b])
    assert reservation.rejected is None
    assert [(p.id, e.type, e.data["quantity"]) for p, e in reservation.events] == [
        (a.id, STOCK_RESERVED, 3),
        (b.id, STOCK_RESERVED, 2),
    ]


def test_one_line_short_of_stock_rejects_them_all():
    plenty, scarce = product(10), product(1)
    in_id_order = sorted([plenty, scarce], key=lambda p: p.id)
    reservation = reserve_lines(ORDER, {plenty.id: 3, scarce.id: 2}, in_id_order)
    assert reservation.events == []
    assert reservation.rejected is not None
    assert reservation.rejected.startswith("out of stock: SKU-1: 2 wanted, ")


def test_an_unknown_product_rejects_the_order():
    known = product(10)
    missing = uuid.uuid4()
    lines = {known.id: 1, missing: 1}
    products = [known if pid == known.id else None for pid in sorted(lines)]
    reservation = reserve_lines(ORDER, lines, products)
    assert (reservation.events, reservation.rejected) == ([], f"unknown product {missing}")


def test_a_reservation_is_released_or_sold():
    assert settle(ORDER, 3, Held.RELEASED).type == STOCK_RELEASED
    sold = settle(ORDER, 3, Held.SOLD)
    assert (sold.type, sold.data) == (STOCK_SOLD, {"order_id": str(ORDER), "quantity": 3})
    with pytest.raises(ValueError, match="released or sold"):
        settle(ORDER, 3, Held.RESERVED)
