"""Stream agents of the order saga: inventory (catalog side) and the stock outcome (order side)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TypeVar

from confluent_kafka import Message

from shop.db.connections import Conn
from shop.db.orders import lock_orders
from shop.db.products import lock_orders as lock_inventory_orders
from shop.db.products import lock_products, products_reserved_by
from shop.db.unit_of_work import UnitOfWork
from shop.domain.clock import Clock
from shop.domain.orders import EventForUnknownOrder
from shop.handlers.inventory import handle_order_cancelled, handle_order_created, handle_order_paid
from shop.handlers.orders import handle_stock_outcome
from shop.names import PoisonMessage
from shop.schemas.orders import (
    ORDER_CANCELLED,
    OrderCreatedV1,
    OrderNoticeV1,
    decode_order_created,
    decode_order_notice,
)


@contextmanager
def unknown_orders_are_poison() -> Iterator[None]:
    """An event about an order that does not exist will never be handled: dead-letter it."""
    try:
        yield
    except EventForUnknownOrder as exc:
        raise PoisonMessage(str(exc)) from exc


# Each agent also takes a batch of records (shop.streams.lanes): the handlers' units of work join
# one opened around them all, so the batch commits once, or not at all. Its locks are taken first,
# in a fixed order (see shop.db.products.lock_products), so that concurrent batches cannot deadlock.

Each = Callable[[Message], AbstractContextManager[None]]
Event = TypeVar("Event", OrderCreatedV1, OrderNoticeV1)


class SagaAgents:
    """The saga's agents, on the databases and clock they are handed."""

    def __init__(self, unit_of_work: Callable[[str], UnitOfWork], clock: Clock) -> None:
        self._unit_of_work = unit_of_work  # a context's primary: "catalog" or "orders"
        self._clock = clock

    def inventory(self, message: Message) -> None:
        """order.created reserves every line's stock, or none."""
        event = decode_order_created(message.value())
        handle_order_created(event, self._unit_of_work("catalog"), self._clock)

    def stock_outcome(self, message: Message) -> None:
        """stock.reserved or stock.rejected, written on the order."""
        with unknown_orders_are_poison():
            handle_stock_outcome(_notice(message), self._unit_of_work("orders"), self._clock)

    def settlement(self, message: Message) -> None:
        """order.cancelled releases the reservation; order.paid turns it into a sale."""
        notice = _notice(message)
        with unknown_orders_are_poison():
            self._settle(notice, self._unit_of_work("catalog"))

    def inventory_batch(self, messages: Sequence[Message], each: Each) -> None:
        def lock(conn: Conn, events: list[OrderCreatedV1]) -> None:
            lock_inventory_orders(conn, [event.order_id for event in events])
            lock_products(conn, [product_id for event in events for product_id, _ in event.lines])

        self._batch(
            "catalog",
            messages,
            each,
            lambda message: decode_order_created(message.value()),
            lock,
            lambda event, uow: handle_order_created(event, uow, self._clock),
        )

    def stock_outcome_batch(self, messages: Sequence[Message], each: Each) -> None:
        self._batch(
            "orders",
            messages,
            each,
            _notice,
            lambda conn, notices: lock_orders(conn, [notice.order_id for notice in notices]),
            lambda notice, uow: handle_stock_outcome(notice, uow, self._clock),
        )

    def settlement_batch(self, messages: Sequence[Message], each: Each) -> None:
        def lock(conn: Conn, notices: list[OrderNoticeV1]) -> None:
            order_ids = [notice.order_id for notice in notices]
            lock_inventory_orders(conn, order_ids)
            lock_products(conn, products_reserved_by(conn, order_ids))

        self._batch("catalog", messages, each, _notice, lock, self._settle)

    def _settle(self, notice: OrderNoticeV1, uow: UnitOfWork) -> None:
        settle = handle_order_cancelled if notice.schema == ORDER_CANCELLED else handle_order_paid
        settle(notice, uow, self._clock)

    def _batch(
        self,
        database: str,
        messages: Sequence[Message],
        each: Each,
        decode: Callable[[Message], Event],
        lock: Callable[[Conn, list[Event]], None],
        handle: Callable[[Event, UnitOfWork], object],
    ) -> None:
        """Decodes every record (a poison one fails the batch, which is then tried in halves), takes
        the batch's locks, then handles each record in its own span, all in one unit of work."""
        events = [decode(message) for message in messages]
        uow = self._unit_of_work(database)
        with uow, unknown_orders_are_poison():
            lock(uow.conn, events)
            for message, event in zip(messages, events, strict=True):
                with each(message):
                    handle(event, uow)


def _notice(message: Message) -> OrderNoticeV1:
    topic = message.topic()
    assert topic is not None  # set on every consumed record
    return decode_order_notice(topic, message.value())
