from __future__ import annotations

import itertools
import uuid

import pytest

from shop.domain.orders import (
    ALLOWED,
    InvalidOrder,
    InvalidTransition,
    OrderLine,
    Price,
    Status,
    UnknownProduct,
    can_transition,
    check_transition,
    parse_lines,
    price_lines,
)

LEGAL = {
    (Status.PENDING, Status.PAID),
    (Status.PENDING, Status.CANCELLED),
    (Status.PAID, Status.COMPLETED),
}


@pytest.mark.parametrize(("current", "target"), list(itertools.product(Status, Status)))
def test_every_pair_of_states(current, target):
    assert can_transition(current, target) is ((current, target) in LEGAL)
    if (current, target) in LEGAL:
        check_transition(current, target)
    else:
        with pytest.raises(InvalidTransition):
            check_transition(current, target)


def test_the_table_names_every_state():
    assert set(ALLOWED) == set(Status)


A, B = uuid.uuid4(), uuid.uuid4()
PRICES = {A: Price(250, "EUR"), B: Price(1000, "EUR")}


def test_pricing_multiplies_and_adds_in_minor_units():
    lines, total, currency = price_lines([OrderLine(A, 3), OrderLine(B, 2)], PRICES)
    assert [(line.product_id, line.unit_price_cents) for line in lines] == [(A, 250), (B, 1000)]
    assert (total, currency) == (2750, "EUR")


def test_an_unknown_product_is_named():
    missing = uuid.uuid4()
    with pytest.raises(UnknownProduct, match=str(missing)):
        price_lines([OrderLine(A, 1), OrderLine(missing, 1)], PRICES)


def test_one_order_one_currency():
    with pytest.raises(InvalidOrder, match="currency"):
        price_lines([OrderLine(A, 1), OrderLine(B, 1)], {A: Price(1, "EUR"), B: Price(1, "USD")})


def test_lines_of_one_product_are_merged():
    body = {"items": [{"product_id": str(A), "quantity": 2}, {"product_id": str(A), "quantity": 3}]}
    assert parse_lines(body) == [OrderLine(A, 5)]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"items": []},
        {"items": [{"product_id": str(A), "quantity": 1}] * 51},
        {"items": [{"product_id": "nope", "quantity": 1}]},
        {"items": [{"product_id": str(A), "quantity": 0}]},
        {"items": [{"product_id": str(A), "quantity": 1001}]},
        {"items": [{"product_id": str(A), "quantity": 1.0}]},
        {"items": [{"product_id": str(A), "quantity": True}]},
        {"items": [{"product_id": str(A)}]},
        {"items": [{"product_id": str(A), "quantity": 1, "price_cents": 1}]},
        {"items": [{"product_id": str(A), "quantity": 600}, {"product_id": str(A), "quantity": 600}]},
        [],
    ],
)
def test_bad_order_bodies_are_refused(body):
    with pytest.raises(InvalidOrder):
        parse_lines(body)
