"""Stream agents of the order saga: inventory (catalog side) and the stock outcome (order side)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from confluent_kafka import Message

from shop import bootstrap
from shop.db.unit_of_work import UnitOfWork
from shop.domain.orders import EventForUnknownOrder
from shop.handlers.inventory import handle_order_cancelled, handle_order_created, handle_order_paid
from shop.handlers.orders import handle_stock_outcome
from shop.schemas.orders import ORDER_CANCELLED, decode_order_created, decode_order_notice
from shop.streams.lanes import PoisonMessage


@contextmanager
def unknown_orders_are_poison() -> Iterator[None]:
    """An event about an order that does not exist will never be handled: dead-letter it."""
    try:
        yield
    except EventForUnknownOrder as exc:
        raise PoisonMessage(str(exc)) from exc


def inventory_agent(message: Message) -> None:
    event = decode_order_created(message.value())
    handle_order_created(event, UnitOfWork(bootstrap.primary_pool("catalog")), bootstrap.utc_now)


def stock_outcome_agent(message: Message) -> None:
    topic = message.topic()
    assert topic is not None
    event = decode_order_notice(topic, message.value())
    with unknown_orders_are_poison():
        handle_stock_outcome(event, UnitOfWork(bootstrap.primary_pool("orders")), bootstrap.utc_now)


def inventory_settlement_agent(message: Message) -> None:
    """order.cancelled releases the reservation; order.paid turns it into a sale."""
    topic = message.topic()
    assert topic is not None
    notice = decode_order_notice(topic, message.value())
    handle = handle_order_cancelled if topic == ORDER_CANCELLED else handle_order_paid
    with unknown_orders_are_poison():
        handle(notice, UnitOfWork(bootstrap.primary_pool("catalog")), bootstrap.utc_now)
