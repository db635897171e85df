"""Every command actor does its work once per command, on the real databases: the same message
delivered again (a redelivery after a worker died before its ack, or dramatiq's retry after a failure
past the commit) answers what the first delivery answered, and changes nothing more."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dramatiq
import psycopg
import pytest
from dramatiq.middleware import CurrentMessage
from psycopg_pool import ConnectionPool

from shop import bootstrap
from shop.db.unit_of_work import UnitOfWork
from shop.domain.clock import utc_now
from shop.handlers.products import CreateProduct, handle_create


@pytest.fixture(scope="module")
def actors(settings) -> Iterator[Any]:
    # A process's broker, with every actor declared on it and its dependencies.
    broker, declared = bootstrap.build_broker(settings, bootstrap.build_dependencies(settings))
    yield {"auth": declared.auth, "orders": declared.orders, "products": declared.products, "broker": broker}
    broker.close()


def delivered(broker: dramatiq.Broker, message_id: str, actor: Any, **kwargs: Any) -> Any:
    """Runs `actor`'s function as a worker runs one delivery of the message `message_id`."""
    message: dramatiq.Message[Any] = dramatiq.Message(
        queue_name=actor.queue_name,
        actor_name=actor.actor_name,
        args=(),
        kwargs=kwargs,
        options={},
        message_id=message_id,
    )
    current = CurrentMessage()
    current.before_process_message(broker, message)
    try:
        return actor.fn(**kwargs)
    finally:
        current.after_process_message(broker, message)


def product_fields(stock: int) -> dict[str, Any]:
    return {
        "sku": f"ONCE-{uuid.uuid4().hex[:8]}",
        "name": "Once",
        "description": "",
        "price_cents": 100,
        "currency": "EUR",
        "stock": stock,
    }


@pytest.fixture(scope="module")
def catalog(settings) -> Iterator[ConnectionPool]:
    with ConnectionPool(settings.databases["catalog"].primary_url, min_size=1, max_size=2) as pool:
        yield pool


def test_a_stock_adjustment_delivered_twice_is_applied_once(actors, catalog):
    fields = product_fields(stock=5)
    product = handle_create(CreateProduct(fields), UnitOfWork(catalog), utc_now)
    message_id = str(uuid.uuid4())
    adjust = actors["products"].adjust_stock
    first = delivered(actors["broker"], message_id, adjust, product_id=str(product.id), delta=7)
    again = delivered(actors["broker"], message_id, adjust, product_id=str(product.id), delta=7)
    assert first["product"] == again["product"]
    assert first["product"]["stock_available"] == 12
    with catalog.connection() as conn:
        assert conn.execute(
            "SELECT stock_available FROM products WHERE id = %s", (product.id,)
        ).fetchone() == (12,)
        events = conn.execute(
            "SELECT count(*) FROM product_events WHERE product_id = %s AND type = 'StockAdjusted'",
            (product.id,),
        ).fetchone()
    assert events == (1,)
    # Another message is another command: it is applied.
    other = delivered(actors["broker"], str(uuid.uuid4()), adjust, product_id=str(product.id), delta=1)
    assert other["product"]["stock_available"] == 13


def test_a_product_created_twice_by_one_message_is_one_product_not_a_duplicate_sku(actors):
    fields = product_fields(stock=1)
    message_id = str(uuid.uuid4())
    create = actors["products"].create_product
    first = delivered(actors["broker"], message_id, create, fields=fields)
    again = delivered(actors["broker"], message_id, create, fields=fields)
    assert "error" not in again, again
    assert again["product"]["id"] == first["product"]["id"]


def test_the_same_idempotency_key_answers_the_first_request_and_refuses_another(actors, catalog):
    fields = product_fields(stock=5)
    product = handle_create(CreateProduct(fields), UnitOfWork(catalog), utc_now)
    admin = str(uuid.uuid4())
    key = {"user_id": admin, "key_digest": uuid.uuid4().hex, "request_hash": "h1"}
    adjust = actors["products"].adjust_stock
    # Two messages (the client's retry after a timeout), one key: one adjustment.
    first = delivered(
        actors["broker"], str(uuid.uuid4()), adjust, product_id=str(product.id), delta=3, idempotency=key
    )
    retry = delivered(
        actors["broker"], str(uuid.uuid4()), adjust, product_id=str(product.id), delta=3, idempotency=key
    )
    assert retry["product"] == first["product"]  # (the commit position may have moved on)
    assert first["product"]["stock_available"] == 8
    reused = delivered(
        actors["broker"],
        str(uuid.uuid4()),
        adjust,
        product_id=str(product.id),
        delta=4,
        idempotency={**key, "request_hash": "h2"},
    )
    assert reused["error"]["code"] == "idempotency_key_reused"


@pytest.fixture(scope="module")
def orders_pool(settings) -> Iterator[ConnectionPool]:
    with ConnectionPool(settings.databases["orders"].primary_url, min_size=1, max_size=2) as pool:
        yield pool


def _pending_order(pool: ConnectionPool) -> tuple[uuid.UUID, uuid.UUID]:
    """A PENDING order written straight into the table, with no order.created in the outbox: a stack
    running beside the tests (the e2e one) would otherwise relay it, its inventory would reject the
    unknown product, and the order would be cancelled before the test cancels it."""
    order_id, user = uuid.uuid4(), uuid.uuid4()
    with pool.connection() as conn:
        conn.execute(
            "INSERT INTO orders (id, user_id, total_cents, currency, created_at, updated_at, expires_at)"
            " VALUES (%s, %s, 100, 'EUR', now(), now(), now() + interval '1 hour')",
            (order_id, user),
        )
        conn.execute(
            "INSERT INTO order_lines (order_id, product_id, quantity, unit_price_cents)"
            " VALUES (%s, %s, 1, 100)",
            (order_id, uuid.uuid4()),
        )
    return order_id, user


def test_a_cancellation_delivered_again_answers_the_cancelled_order(actors, orders_pool):
    order_id, user = _pending_order(orders_pool)
    message_id = str(uuid.uuid4())
    cancel = actors["orders"].cancel_order
    first = delivered(actors["broker"], message_id, cancel, order_id=str(order_id), user_id=str(user))
    again = delivered(actors["broker"], message_id, cancel, order_id=str(order_id), user_id=str(user))
    assert first["order"]["status"] == "CANCELLED", first
    assert again == {**first, "commit_lsn": again["commit_lsn"]}, again  # not 409 invalid_transition
    with orders_pool.connection() as conn:
        notices = conn.execute(
            "SELECT count(*) FROM outbox WHERE topic = 'order.cancelled' AND message_key = %s",
            (str(order_id),),
        ).fetchone()
    assert notices == (1,)  # one order.cancelled, not two
    # A new request to cancel it (another message) is refused: the order is no longer PENDING.
    later = delivered(actors["broker"], str(uuid.uuid4()), cancel, order_id=str(order_id), user_id=str(user))
    assert later["error"]["code"] == "invalid_transition"


def test_a_refused_command_records_nothing_and_is_decided_again(actors, orders_pool):
    order_id, user = _pending_order(orders_pool)
    message_id = str(uuid.uuid4())

    def pay() -> Any:  # one delivery of the same message
        return delivered(
            actors["broker"],
            message_id,
            actors["orders"].pay_order,
            order_id=str(order_id),
            user_id=str(user),
            payment_reference="psp-1",
        )

    assert pay()["error"]["code"] == "stock_not_reserved"
    with orders_pool.connection() as conn:
        conn.execute("UPDATE orders SET stock = 'reserved' WHERE id = %s", (order_id,))
    assert pay()["order"]["status"] == "PAID"


class _LosesItsConnectionAfterCommit:
    """A real connection that breaks when asked for the WAL position (after the commit)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        if "pg_current_wal_lsn" in str(query):
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return self._conn.execute(query, *args, **kwargs)


class _PoolOfBrokenConnections:
    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    @contextmanager
    def connection(self) -> Iterator[Any]:
        with self._pool.connection() as conn:
            yield _LosesItsConnectionAfterCommit(conn)


def test_a_commit_position_that_cannot_be_read_is_no_failure_of_the_committed_unit(catalog):
    """Raised, it would make dramatiq retry a command that committed (do its work twice)."""
    sku = f"LSN-{uuid.uuid4().hex[:8]}"
    fields = {"sku": sku, "name": "Lsn", "description": "", "price_cents": 1, "currency": "EUR", "stock": 1}
    uow = UnitOfWork(_PoolOfBrokenConnections(catalog), track_lsn=True)  # type: ignore[arg-type]
    product = handle_create(CreateProduct(fields), uow, utc_now)
    assert uow.committed
    assert uow.commit_lsn is None
    with catalog.connection() as conn:
        assert conn.execute("SELECT id FROM products WHERE sku = %s", (sku,)).fetchone() == (product.id,)
