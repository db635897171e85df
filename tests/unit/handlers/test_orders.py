"""The order handlers with a fake unit of work and the orders database in memory."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from shop.domain.orders import (
    CancelReason,
    EventForUnknownOrder,
    InvalidTransition,
    Order,
    OrderLine,
    OrderNotFound,
    Price,
    Status,
    Stock,
    UnknownProduct,
)
from shop.domain.timers import TimerPolicy
from shop.handlers import orders as handlers
from shop.schemas.orders import STOCK_REJECTED, STOCK_RESERVED, OrderNoticeV1
from tests.unit.handlers.fakes import T0, FakeOrdersDb, FakeUnitOfWork, clock, in_place_of_the_database

POLICY = TimerPolicy.from_seconds([3600], 24 * 3600)


@pytest.fixture
def db(monkeypatch) -> FakeOrdersDb:
    return in_place_of_the_database(monkeypatch, FakeOrdersDb(), handlers, (handlers, "timers_db"))


def pending(
    db: FakeOrdersDb, stock: Stock = Stock.RESERVED, email: str | None = "buyer@example.test"
) -> Order:
    order = Order(uuid.uuid4(), uuid.uuid4(), Status.PENDING, stock, T0 + timedelta(hours=24))
    db.add(order, email)
    return order


def state(db: FakeOrdersDb, order: Order) -> Order:
    return db.orders[order.id].state


def outcome(schema: str, order: Order) -> OrderNoticeV1:
    return OrderNoticeV1(schema, uuid.uuid4(), order.id, None)


# --- placing --------------------------------------------------------------------------------------


def place(db: FakeOrdersDb, product: uuid.UUID, placement: uuid.UUID | None = None) -> handlers.Placed:
    command = handlers.PlaceOrder(
        uuid.uuid4(), uuid.uuid4(), "key", "hash", [OrderLine(product, 2)], "buyer@example.test", placement
    )
    return handlers.handle_place_order(command, FakeUnitOfWork, clock, POLICY)


def test_an_order_is_placed_with_its_event_and_its_timers(db):
    product = uuid.uuid4()
    db.prices[product] = Price(450, "EUR")
    uows: list[FakeUnitOfWork] = []

    def factory() -> FakeUnitOfWork:
        uows.append(FakeUnitOfWork())
        return uows[-1]

    command = handlers.PlaceOrder(
        uuid.uuid4(), uuid.uuid4(), "key", "hash", [OrderLine(product, 2)], "buyer@example.test"
    )
    placed = handlers.handle_place_order(command, factory, clock, POLICY)
    assert placed.created
    assert placed.order is not None
    written, lines = placed.order
    assert (written.status, written.stock, written.total_cents) == ("PENDING", "reserving", 900)
    assert [(line.product_id, line.quantity, line.unit_price_cents) for line in lines] == [(product, 2, 450)]
    (uow,) = uows
    assert uow.committed
    assert uow.topics() == ["timers", "timers", "order.created"]  # the first reminder's trigger, the expiry's
    assert [t.kind for t in db.timers[command.order_id]] == ["reminder_1", "expiry"]
    again = handlers.handle_place_order(command, factory, clock, POLICY)
    assert (again.order_id, again.created) == (command.order_id, False)
    assert uows[-1].messages == []


def test_a_refused_placement_records_its_refusal_and_writes_nothing(db):
    placement = uuid.uuid4()
    with pytest.raises(UnknownProduct):
        place(db, uuid.uuid4(), placement)
    assert db.refusals[placement][0] == "unknown_product"
    assert db.orders == {}


# --- the inventory's answer -----------------------------------------------------------------------


def test_stock_reserved_is_recorded_and_announced(db):
    order = pending(db, Stock.RESERVING)
    uow = FakeUnitOfWork()
    assert handlers.handle_stock_outcome(outcome(STOCK_RESERVED, order), uow, clock) is True
    assert uow.committed
    assert state(db, order).stock is Stock.RESERVED
    assert uow.messages == []
    assert uow.notifications == [(db.STOCK_SETTLED_CHANNEL, str(order.id))]


def test_stock_rejected_cancels_the_order_and_emails_the_customer_without_an_order_cancelled(db):
    order = pending(db, Stock.RESERVING)
    uow = FakeUnitOfWork()
    assert handlers.handle_stock_outcome(outcome(STOCK_REJECTED, order), uow, clock) is True
    after = state(db, order)
    assert (after.status, after.stock, after.cancel_reason) == (
        Status.CANCELLED,
        Stock.REJECTED,
        CancelReason.OUT_OF_STOCK,
    )
    (email,) = uow.messages  # the inventory holds nothing of it: no order.cancelled to release
    assert email.payload["kwargs"]["template"] == "order_cancelled"
    assert email.payload["kwargs"]["context"]["reason"] == "out_of_stock"


def test_an_outcome_handled_before_changes_nothing(db):
    order = pending(db, Stock.RESERVING)
    notice = outcome(STOCK_RESERVED, order)
    assert handlers.handle_stock_outcome(notice, FakeUnitOfWork(), clock) is True
    uow = FakeUnitOfWork()
    assert handlers.handle_stock_outcome(notice, uow, clock) is False
    assert uow.notifications == []


def test_a_late_outcome_leaves_a_settled_order_as_it_is(db):
    order = pending(db, Stock.RESERVED)
    uow = FakeUnitOfWork()
    assert handlers.handle_stock_outcome(outcome(STOCK_REJECTED, order), uow, clock) is True
    assert state(db, order) == order
    assert uow.messages == []


def test_an_outcome_for_an_order_that_does_not_exist_is_refused_and_not_recorded(db):
    notice = OrderNoticeV1(STOCK_RESERVED, uuid.uuid4(), uuid.uuid4(), None)
    uow = FakeUnitOfWork()
    with pytest.raises(EventForUnknownOrder):
        handlers.handle_stock_outcome(notice, uow, clock)
    assert not uow.committed


# --- paying and cancelling ------------------------------------------------------------------------


def test_paying_makes_the_order_paid_and_tells_the_inventory_once(db):
    order = pending(db)
    uow = FakeUnitOfWork()
    handlers.handle_pay(handlers.PayOrder(order.id, order.user_id, "psp-1"), uow, clock)
    assert uow.committed
    after = state(db, order)
    assert (after.status, after.payment_reference, after.paid_at) == (Status.PAID, "psp-1", T0)
    assert uow.topics() == ["order.paid"]
    again = FakeUnitOfWork()
    handlers.handle_pay(handlers.PayOrder(order.id, order.user_id, "psp-1"), again, clock)
    assert again.messages == []


def test_someone_elses_order_is_not_found(db):
    order = pending(db)
    with pytest.raises(OrderNotFound):
        handlers.handle_pay(handlers.PayOrder(order.id, uuid.uuid4(), "psp-1"), FakeUnitOfWork(), clock)
    with pytest.raises(OrderNotFound):
        handlers.handle_cancel(handlers.CancelOrder(order.id, uuid.uuid4()), FakeUnitOfWork(), clock)
    assert state(db, order) == order


def test_cancelling_a_pending_order_tells_the_inventory(db):
    order = pending(db)
    uow = FakeUnitOfWork()
    handlers.handle_cancel(handlers.CancelOrder(order.id, order.user_id), uow, clock)
    after = state(db, order)
    assert (after.status, after.cancel_reason) == (Status.CANCELLED, CancelReason.CUSTOMER_REQUEST)
    (notice,) = uow.messages
    assert (notice.topic, notice.payload["reason"]) == ("order.cancelled", "customer_request")


def test_a_paid_order_cannot_be_cancelled(db):
    order = pending(db)
    handlers.handle_pay(handlers.PayOrder(order.id, order.user_id, "psp-1"), FakeUnitOfWork(), clock)
    uow = FakeUnitOfWork()
    with pytest.raises(InvalidTransition):
        handlers.handle_cancel(handlers.CancelOrder(order.id, order.user_id), uow, clock)
    assert not uow.committed
    assert uow.messages == []
    assert state(db, order).status is Status.PAID
