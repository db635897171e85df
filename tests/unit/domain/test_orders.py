from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shop.domain.orders import (
    ALLOWED,
    CancelReason,
    InvalidOrder,
    InvalidTransition,
    Order,
    OrderCancelled,
    OrderCompleted,
    OrderEvent,
    OrderLine,
    OrderPaid,
    Price,
    Status,
    Stock,
    StockNotReserved,
    StockSettled,
    UnknownProduct,
    apply,
    can_transition,
    cancel,
    check_transition,
    complete,
    parse_lines,
    pay,
    price_lines,
    settle_stock,
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


# --- decisions and their fold ----------------------------------------------------------------------

T0 = datetime(2026, 11, 25, 12, tzinfo=UTC)
EXPIRES = T0 + timedelta(hours=24)


def order(status: Status = Status.PENDING, stock: Stock = Stock.RESERVED, **fields) -> Order:
    return Order(uuid.uuid4(), uuid.uuid4(), status, stock, EXPIRES, **fields)


def test_paying_a_pending_order_with_its_stock_reserved_makes_it_paid():
    pending = order()
    paid = pay(pending, "psp-1", T0)
    assert paid == OrderPaid("psp-1")
    after = apply(pending, paid, T0)
    assert (after.status, after.payment_reference, after.paid_at) == (Status.PAID, "psp-1", T0)


def test_the_same_payment_again_changes_nothing_and_another_is_refused():
    paid = apply(order(), OrderPaid("psp-1"), T0)
    assert pay(paid, "psp-1", T0) is None
    with pytest.raises(InvalidTransition):
        pay(paid, "psp-2", T0)


def test_an_order_cannot_be_paid_once_expired_or_before_its_stock_is_reserved():
    with pytest.raises(InvalidTransition, match="expired"):
        pay(order(), "psp-1", EXPIRES)
    with pytest.raises(StockNotReserved):
        pay(order(stock=Stock.RESERVING), "psp-1", T0)
    with pytest.raises(InvalidTransition):
        pay(order(Status.CANCELLED, cancel_reason=CancelReason.CUSTOMER_REQUEST), "psp-1", T0)


@pytest.mark.parametrize("status", list(Status))
def test_only_a_pending_order_is_cancelled_and_only_a_paid_one_completed(status):
    current = order(status)
    if status is Status.PENDING:
        cancelled = apply(current, cancel(current, CancelReason.PAYMENT_TIMEOUT), T0)
        assert (cancelled.status, cancelled.cancel_reason) == (Status.CANCELLED, "payment_timeout")
    else:
        with pytest.raises(InvalidTransition):
            cancel(current, CancelReason.CUSTOMER_REQUEST)
    if status is Status.PAID:
        assert apply(current, complete(current), T0).status is Status.COMPLETED
    else:
        with pytest.raises(InvalidTransition):
            complete(current)


@pytest.mark.parametrize(("current", "target"), list(itertools.product(Status, Status)))
def test_apply_checks_every_change_of_status_against_the_table(current, target):
    events: dict[Status, OrderEvent] = {
        Status.PAID: OrderPaid("psp"),
        Status.CANCELLED: OrderCancelled(CancelReason.CUSTOMER_REQUEST),
        Status.COMPLETED: OrderCompleted(),
    }
    if target not in events:
        return  # no event makes an order PENDING
    if (current, target) in LEGAL:
        assert apply(order(current), events[target], T0).status is target
    else:
        with pytest.raises(InvalidTransition):
            apply(order(current), events[target], T0)


def test_stock_reserved_is_recorded_whatever_the_status():
    for status in (Status.PENDING, Status.CANCELLED):
        assert settle_stock(order(status, Stock.RESERVING), Stock.RESERVED) == [StockSettled(Stock.RESERVED)]


def test_stock_rejected_cancels_a_pending_order_out_of_stock():
    reserving = order(stock=Stock.RESERVING)
    events = settle_stock(reserving, Stock.REJECTED)
    assert events == [StockSettled(Stock.REJECTED), OrderCancelled(CancelReason.OUT_OF_STOCK)]
    after = reserving
    for event in events:
        after = apply(after, event, T0)
    assert (after.status, after.stock, after.cancel_reason) == (
        Status.CANCELLED,
        Stock.REJECTED,
        "out_of_stock",
    )


def test_stock_rejected_for_an_order_that_ended_first_keeps_its_status():
    ended = order(Status.CANCELLED, Stock.RESERVING, cancel_reason=CancelReason.CUSTOMER_REQUEST)
    assert settle_stock(ended, Stock.REJECTED) == [StockSettled(Stock.REJECTED)]


@pytest.mark.parametrize("outcome", [Stock.RESERVED, Stock.REJECTED])
def test_a_late_answer_for_an_order_settled_already_changes_nothing(outcome):
    assert settle_stock(order(stock=Stock.RESERVED), outcome) == []
    assert settle_stock(order(stock=Stock.REJECTED), outcome) == []


def test_the_inventory_answers_reserved_or_rejected():
    with pytest.raises(ValueError, match="reserved or rejected"):
        settle_stock(order(stock=Stock.RESERVING), Stock.RESERVING)
