"""A fake unit of work, a fixed clock and in-memory stand-ins for the SQL of the orders and catalog
databases, for the handlers' unit tests (as cosmicpython's FakeUnitOfWork and FakeRepository)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import ModuleType, TracebackType
from typing import Any, TypeVar
from uuid import UUID

import pytest

from shop.db import orders as orders_db
from shop.db.orders import LockedOrder
from shop.db.unit_of_work import UnitOfWork
from shop.domain.orders import Order, Price, PricedLine, Status, Stock
from shop.domain.products import Product
from shop.domain.timers import Timer

T0 = datetime(2026, 11, 25, 12, tzinfo=UTC)


def clock() -> datetime:
    """The handlers' clock in these tests: always T0."""
    return T0


FakeDb = TypeVar("FakeDb", "FakeOrdersDb", "FakeCatalogDb")


def in_place_of_the_database(
    monkeypatch: pytest.MonkeyPatch, fake: FakeDb, handlers: ModuleType, *also: tuple[ModuleType, str]
) -> FakeDb:
    """`fake` as the database of the handler module `handlers` (its `db` and the inbox's
    `record_handled`) and as each (module, name) of `also`."""
    for module, name in ((handlers, "db"), *also):
        monkeypatch.setattr(module, name, fake)
    monkeypatch.setattr(handlers, "record_handled", fake.record_handled)
    return fake


class FakeUnitOfWork(UnitOfWork):
    """Collects what a handler queues (outbox messages, notifications) and whether it committed: an
    exception out of the outermost `with` means rolled back."""

    def __init__(self) -> None:
        self.messages = []
        self.committed = False
        self.commit_lsn = None
        self._depth = 0
        self._notifications = []
        self.conn = None  # type: ignore[assignment]  # the fakes below take its place

    def __enter__(self) -> FakeUnitOfWork:
        self._depth += 1
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._depth -= 1
        if not self._depth:
            self.committed = exc is None

    @property
    def notifications(self) -> list[tuple[str, str]]:
        return self._notifications

    def topics(self) -> list[str]:
        return [message.topic for message in self.messages]


def handled_once(handled: set[tuple[str, UUID]], consumer: str, event_id: UUID) -> bool:
    """shop.db.inbox.record_handled, in memory."""
    if (consumer, event_id) in handled:
        return False
    handled.add((consumer, event_id))
    return True


@dataclass
class FakeOrdersDb:
    """The functions of shop.db.orders (and the timers' insert) the order handlers call."""

    orders: dict[UUID, LockedOrder] = field(default_factory=dict)
    prices: dict[UUID, Price] = field(default_factory=dict)
    handled: set[tuple[str, UUID]] = field(default_factory=set)
    idempotency: dict[tuple[UUID, str], orders_db.IdempotencyRow] = field(default_factory=dict)
    refusals: dict[UUID, tuple[str, str]] = field(default_factory=dict)
    timers: dict[UUID, list[Timer]] = field(default_factory=dict)
    unpaid: tuple[int, int] = (0, 0)

    STOCK_SETTLED_CHANNEL = orders_db.STOCK_SETTLED_CHANNEL
    OrderRow = orders_db.OrderRow
    LineRow = orders_db.LineRow

    def add(self, order: Order, customer_email: str | None = "buyer@example.test") -> None:
        self.orders[order.id] = LockedOrder(order, customer_email, 900, "EUR")

    def record_handled(self, conn: object, consumer: str, event_id: UUID) -> bool:
        return handled_once(self.handled, consumer, event_id)

    def lock_order(self, conn: object, order_id: UUID) -> LockedOrder | None:
        return self.orders.get(order_id)

    def update_order(self, conn: object, order: Order, now: datetime) -> None:
        self.orders[order.id] = replace(self.orders[order.id], state=order)

    def idempotency_record(self, conn: object, user_id: UUID, key: str) -> orders_db.IdempotencyRow | None:
        return self.idempotency.get((user_id, key))

    def prices_of(self, conn: object, product_ids: Sequence[UUID]) -> dict[UUID, Price]:
        return {pid: self.prices[pid] for pid in product_ids if pid in self.prices}

    def record_refusal(
        self, conn: object, placement_id: UUID, user_id: UUID, code: str, message: str, now: datetime
    ) -> None:
        self.refusals[placement_id] = (code, message)

    def lock_customer(self, conn: object, user_id: UUID) -> None:
        pass

    def unpaid_of(self, conn: object, user_id: UUID) -> tuple[int, int]:
        return self.unpaid

    def insert_order(
        self,
        conn: object,
        order_id: UUID,
        user_id: UUID,
        lines: Sequence[PricedLine],
        total_cents: int,
        currency: str,
        now: datetime,
        expires_at: datetime,
        customer_email: str | None = None,
    ) -> None:
        state = Order(order_id, user_id, Status.PENDING, Stock.RESERVING, expires_at)
        self.orders[order_id] = LockedOrder(state, customer_email, total_cents, currency)

    def insert_idempotency_record(
        self,
        conn: object,
        user_id: UUID,
        key: str,
        request_hash: str,
        order_id: UUID,
        placement_id: UUID | None,
    ) -> None:
        self.idempotency[(user_id, key)] = orders_db.IdempotencyRow(request_hash, order_id)

    def insert_timers(self, conn: object, order_id: UUID, timers: Sequence[Timer]) -> None:
        self.timers[order_id] = list(timers)


@dataclass
class FakeCatalogDb:
    """The functions of shop.db.products the inventory handlers (and record_event) call."""

    products: dict[UUID, Product] = field(default_factory=dict)
    events: list[tuple[UUID, int, str, dict[str, Any]]] = field(default_factory=list)
    # (order, product) -> [quantity, state]
    reservations: dict[tuple[UUID, UUID], list[Any]] = field(default_factory=dict)
    cancelled: set[UUID] = field(default_factory=set)
    handled: set[tuple[str, UUID]] = field(default_factory=set)

    def record_handled(self, conn: object, consumer: str, event_id: UUID) -> bool:
        return handled_once(self.handled, consumer, event_id)

    def lock_order(self, conn: object, order_id: UUID) -> None:
        pass

    def product_for_update(self, conn: object, product_id: UUID) -> Product | None:
        return self.products.get(product_id)

    def append_event(
        self,
        conn: object,
        event_id: UUID,
        product_id: UUID,
        version: int,
        type_: str,
        data: dict[str, Any],
        at: datetime,
    ) -> int:
        self.events.append((product_id, version, type_, data))
        return len(self.events)

    def insert_product(self, conn: object, product: Product, table: str = "products") -> None:
        self.products[product.id] = product

    def update_product(self, conn: object, product: Product) -> None:
        self.products[product.id] = product

    def reserved_or_cancelled(self, conn: object, order_id: UUID) -> tuple[bool, bool]:
        return any(o == order_id for o, _ in self.reservations), order_id in self.cancelled

    def insert_reservation(self, conn: object, order_id: UUID, product_id: UUID, quantity: int) -> None:
        self.reservations[(order_id, product_id)] = [quantity, "reserved"]

    def held_reservations(self, conn: object, order_id: UUID) -> list[tuple[UUID, int]]:
        return sorted(
            (product_id, held[0])
            for (o, product_id), held in self.reservations.items()
            if o == order_id and held[1] == "reserved"
        )

    def set_reservation_state(
        self, conn: object, order_id: UUID, product_id: UUID, state: str, now: datetime
    ) -> None:
        self.reservations[(order_id, product_id)][1] = str(state)

    def remember_cancelled(self, conn: object, order_id: UUID) -> None:
        self.cancelled.add(order_id)

    def ever_held(self, conn: object, order_id: UUID) -> bool:
        return any(o == order_id for o, _ in self.reservations)
