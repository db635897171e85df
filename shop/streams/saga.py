"""Stream agents of the order saga: inventory (catalog side) and the stock outcome (order side)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager

from confluent_kafka import Message

from shop import bootstrap
from shop.db.orders import lock_orders
from shop.db.products import lock_orders as lock_inventory_orders
from shop.db.products import lock_products, products_reserved_by
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


# The same agents for a batch of records (shop.streams.lanes): the handlers' units of work join
# one opened around them all, so the batch commits once, or not at all. Its locks are taken first,
# in a fixed order (see shop.db.products.lock_products), so that concurrent batches cannot deadlock.

Each = Callable[[Message], AbstractContextManager[None]]


def inventory_batch_agent(messages: Sequence[Message], each: Each) -> None:
    events = [decode_order_created(message.value()) for message in messages]
    uow = UnitOfWork(bootstrap.primary_pool("catalog"))
    with uow:
        lock_inventory_orders(uow.conn, [event.order_id for event in events])
        lock_products(uow.conn, [product_id for event in events for product_id, _ in event.lines])
        for message, event in zip(messages, events, strict=True):
            with each(message):
                handle_order_created(event, uow, bootstrap.utc_now)


def stock_outcome_batch_agent(messages: Sequence[Message], each: Each) -> None:
    events = [decode_order_notice(_topic(message), message.value()) for message in messages]
    uow = UnitOfWork(bootstrap.primary_pool("orders"))
    with uow, unknown_orders_are_poison():
        lock_orders(uow.conn, [event.order_id for event in events])
        for message, event in zip(messages, events, strict=True):
            with each(message):
                handle_stock_outcome(event, uow, bootstrap.utc_now)


def inventory_settlement_batch_agent(messages: Sequence[Message], each: Each) -> None:
    notices = [decode_order_notice(_topic(message), message.value()) for message in messages]
    uow = UnitOfWork(bootstrap.primary_pool("catalog"))
    with uow, unknown_orders_are_poison():
        order_ids = [notice.order_id for notice in notices]
        lock_inventory_orders(uow.conn, order_ids)
        lock_products(uow.conn, products_reserved_by(uow.conn, order_ids))
        for message, notice in zip(messages, notices, strict=True):
            with each(message):
                handle = handle_order_cancelled if notice.schema == ORDER_CANCELLED else handle_order_paid
                handle(notice, uow, bootstrap.utc_now)


def _topic(message: Message) -> str:
    topic = message.topic()
    assert topic is not None  # set on every consumed record
    return topic
