"""The inventory handlers with a fake unit of work and the catalog database in memory."""

from __future__ import annotations

import uuid

import pytest

from shop.domain.inventory import CANCELLED_FIRST
from shop.domain.orders import EventForUnknownOrder
from shop.domain.products import Product
from shop.handlers import inventory as handlers
from shop.handlers import products as product_handlers
from shop.schemas.orders import ORDER_CANCELLED, ORDER_PAID, OrderCreatedV1, OrderNoticeV1
from tests.unit.handlers.fakes import T0, FakeCatalogDb, FakeUnitOfWork, clock, in_place_of_the_database


@pytest.fixture
def db(monkeypatch) -> FakeCatalogDb:
    # record_event (shop/handlers/products.py) appends the stock events
    return in_place_of_the_database(monkeypatch, FakeCatalogDb(), handlers, (product_handlers, "db"))


def product(db: FakeCatalogDb, available: int) -> uuid.UUID:
    made = Product(uuid.uuid4(), "POT-1", "Pot", "", 100, "EUR", available, 0, 1, T0, T0)
    db.products[made.id] = made
    return made.id


def stock(db: FakeCatalogDb, product_id: uuid.UUID) -> tuple[int, int]:
    return db.products[product_id].stock_available, db.products[product_id].stock_reserved


def created(*lines: tuple[uuid.UUID, int]) -> OrderCreatedV1:
    return OrderCreatedV1(uuid.uuid4(), uuid.uuid4(), tuple(lines))


def notice(schema: str, order: OrderCreatedV1) -> OrderNoticeV1:
    return OrderNoticeV1(schema, uuid.uuid4(), order.order_id, None)


def test_all_lines_or_none(db):
    plenty, scarce = product(db, 10), product(db, 1)
    uow = FakeUnitOfWork()
    assert handlers.handle_order_created(created((plenty, 3), (scarce, 2)), uow, clock) == "rejected"
    assert (stock(db, plenty), db.events, db.reservations) == ((10, 0), [], {})
    (answer,) = uow.messages
    assert answer.topic == "stock.rejected"
    assert answer.payload["reason"].startswith("out of stock: POT-1: 2 wanted")
    uow = FakeUnitOfWork()
    order = created((plenty, 3), (scarce, 1))
    assert handlers.handle_order_created(order, uow, clock) == "reserved"
    assert uow.committed
    assert (stock(db, plenty), stock(db, scarce)) == ((7, 3), (0, 1))
    assert sorted(uow.topics()) == ["product.updated", "product.updated", "stock.reserved"]
    assert db.reservations == {
        (order.order_id, plenty): [3, "reserved"],
        (order.order_id, scarce): [1, "reserved"],
    }


def test_an_unknown_product_rejects_the_order(db):
    missing = uuid.uuid4()
    uow = FakeUnitOfWork()
    assert handlers.handle_order_created(created((missing, 1)), uow, clock) == "rejected"
    (answer,) = uow.messages
    assert answer.payload["reason"] == f"unknown product {missing}"


def test_a_redelivered_order_created_reserves_nothing_twice(db):
    pot = product(db, 10)
    order = created((pot, 4))
    assert handlers.handle_order_created(order, FakeUnitOfWork(), clock) == "reserved"
    assert handlers.handle_order_created(order, FakeUnitOfWork(), clock) == "duplicate"
    again = OrderCreatedV1(uuid.uuid4(), order.order_id, order.lines)  # another event, same order
    uow = FakeUnitOfWork()
    assert handlers.handle_order_created(again, uow, clock) == "duplicate"
    assert uow.messages == []
    assert stock(db, pot) == (6, 4)


def test_a_cancellation_that_came_first_holds_nothing_and_still_answers_the_order_side(db):
    pot = product(db, 5)
    order = created((pot, 2))
    handlers.handle_order_cancelled(notice(ORDER_CANCELLED, order), FakeUnitOfWork(), clock)
    uow = FakeUnitOfWork()
    assert handlers.handle_order_created(order, uow, clock) == "cancelled"
    assert stock(db, pot) == (5, 0)
    (answer,) = uow.messages
    assert (answer.topic, answer.payload["reason"]) == ("stock.rejected", CANCELLED_FIRST)


def test_a_cancellation_releases_and_a_payment_sells(db):
    pot, mug = product(db, 5), product(db, 5)
    cancelled, paid = created((pot, 2), (mug, 1)), created((pot, 1))
    for order in (cancelled, paid):
        handlers.handle_order_created(order, FakeUnitOfWork(), clock)
    assert stock(db, pot) == (2, 3)
    handlers.handle_order_cancelled(notice(ORDER_CANCELLED, cancelled), FakeUnitOfWork(), clock)
    assert (stock(db, pot), stock(db, mug)) == ((4, 1), (5, 0))
    handlers.handle_order_paid(notice(ORDER_PAID, paid), FakeUnitOfWork(), clock)
    assert stock(db, pot) == (4, 0)
    assert [event[2] for event in db.events[-3:]] == ["StockReleased", "StockReleased", "StockSold"]
    assert {key[1]: held[1] for key, held in db.reservations.items() if key[0] == cancelled.order_id} == {
        pot: "released",
        mug: "released",
    }


def test_a_paid_order_that_never_held_stock_is_refused_and_a_settled_one_ignored(db):
    uow = FakeUnitOfWork()
    with pytest.raises(EventForUnknownOrder):
        handlers.handle_order_paid(notice(ORDER_PAID, created()), uow, clock)
    assert not uow.committed
    pot = product(db, 5)
    order = created((pot, 1))
    handlers.handle_order_created(order, FakeUnitOfWork(), clock)
    handlers.handle_order_paid(notice(ORDER_PAID, order), FakeUnitOfWork(), clock)
    handlers.handle_order_paid(notice(ORDER_PAID, order), FakeUnitOfWork(), clock)  # another event id
    assert stock(db, pot) == (4, 0)
