"""The inventory agent on the real catalog database and Kafka."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable

from confluent_kafka import Producer
from prometheus_client import REGISTRY

from shop import bootstrap
from shop.db.products import reservations_of_ended_orders, stock_that_does_not_add_up
from shop.db.unit_of_work import UnitOfWork
from shop.domain.orders import PricedLine
from shop.handlers.inventory import handle_order_cancelled, handle_order_created
from shop.handlers.products import CreateProduct, handle_create
from shop.schemas.orders import (
    ORDER_CANCELLED,
    STOCK_REJECTED,
    OrderNoticeV1,
    decode_order_created,
    encode_order_created,
)
from shop.streams.runner import StreamRunner
from shop.streams.saga import SagaAgents
from tests.integration.db_helpers import now
from tests.integration.kafka_helpers import scratch_topic

DATABASE = "catalog"


def stock(pool, product_id) -> tuple[int, int]:
    with pool.connection() as conn:
        row = conn.execute(
            "SELECT stock_available, stock_reserved FROM products WHERE id = %s", (product_id,)
        ).fetchone()
    assert row is not None
    return row[0], row[1]


def order_created(lines: list[tuple[uuid.UUID, int]]) -> bytes:
    payload = encode_order_created(
        uuid.uuid4(), now(), uuid.uuid4(), uuid.uuid4(), [PricedLine(p, q, 100) for p, q in lines], 100, "EUR"
    )
    return json.dumps(payload).encode()


def new_product(pool, quantity: int):
    fields = {
        "sku": f"INV-{uuid.uuid4().hex[:10]}",
        "name": "Pot",
        "price_cents": 100,
        "currency": "EUR",
        "stock": quantity,
    }
    return handle_create(CreateProduct(fields), UnitOfWork(pool), now)


def inventory_runner(settings, topic: str, dead_letter: str, batched: bool = False) -> StreamRunner:
    """The inventory agent (and, `batched`, its batch form) on `topic`, in a group of its own."""
    needs = bootstrap.build_dependencies(settings)  # the agents as `shop run streams` has them
    saga = SagaAgents(needs.unit_of_work, needs.clock)
    return StreamRunner(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"inv-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
        },
        {"bootstrap.servers": settings.kafka_bootstrap},
        {topic: saga.inventory},
        dead_letter_topic=dead_letter,
        lanes=4,
        batch_agents={topic: saga.inventory_batch} if batched else None,
    )


def agent_run(
    settings,
    values: list[bytes],
    done: Callable[[], bool],
    timeout: float,
    partitions: int = 1,
    batched: bool = False,
) -> str:
    """`values` produced onto a scratch topic of `partitions` partitions (value n on partition
    n % partitions), and the inventory agent (4 lanes) run on it until `done()` or `timeout` seconds;
    the topic's name."""
    with (
        scratch_topic(settings.kafka_bootstrap, partitions=partitions) as topic,
        scratch_topic(settings.kafka_bootstrap, 1, "dlt") as dead_letter,
    ):
        producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
        for n, value in enumerate(values):
            producer.produce(topic, value=value, key=b"k", partition=n % partitions)
        assert producer.flush(10) == 0
        runner = inventory_runner(settings, topic, dead_letter, batched=batched)
        runner.start()
        deadline = time.monotonic() + timeout
        while not done() and time.monotonic() < deadline:
            time.sleep(0.1)
        runner.stop()
    return topic


def test_all_lines_or_none(pool):
    plenty, scarce = new_product(pool, 10), new_product(pool, 1)
    rejected = decode_order_created(order_created([(plenty.id, 3), (scarce.id, 2)]))
    assert handle_order_created(rejected, UnitOfWork(pool), now) == "rejected"
    assert stock(pool, plenty.id) == (10, 0)
    accepted = decode_order_created(order_created([(plenty.id, 3), (scarce.id, 1)]))
    assert handle_order_created(accepted, UnitOfWork(pool), now) == "reserved"
    assert (stock(pool, plenty.id), stock(pool, scarce.id)) == ((7, 3), (0, 1))


def test_a_cancellation_that_came_first_holds_nothing_and_still_answers_the_order_side(pool):
    product = new_product(pool, 5)
    created = decode_order_created(order_created([(product.id, 2)]))
    cancelled = OrderNoticeV1(ORDER_CANCELLED, uuid.uuid4(), created.order_id, "customer_request")
    handle_order_cancelled(cancelled, UnitOfWork(pool), now)
    uow = UnitOfWork(pool)
    assert handle_order_created(created, uow, now) == "cancelled"
    assert stock(pool, product.id) == (5, 0)
    (answer,) = uow.messages
    assert (answer.topic, answer.key) == (STOCK_REJECTED, str(created.order_id))
    assert answer.payload["reason"] == "the order was cancelled before its stock was reserved"


def test_redelivery_after_the_commit_but_before_the_offset_commit_does_not_reserve_twice(settings, pool):
    product = new_product(pool, 10)
    value = order_created([(product.id, 4)])
    # The agent's transaction committed, then the process died before committing the offset...
    assert handle_order_created(decode_order_created(value), UnitOfWork(pool), now) == "reserved"
    assert stock(pool, product.id) == (6, 4)
    # ...so the same record is delivered again, to a fresh consumer of the group.
    values = [value, b"not json", order_created([(product.id, 1)])]
    agent_run(settings, values, lambda: stock(pool, product.id) == (5, 5), timeout=20)
    # The redelivered order changed nothing; the poison record was skipped; the next order reserved.
    assert stock(pool, product.id) == (5, 5)


def test_a_cancellation_racing_its_order_created_leaves_nothing_reserved(pool):
    """order.created checks for a cancellation, then waits on a hot product's row lock; the order's
    cancellation must not commit meanwhile without seeing the reservation that follows, or the
    reservation is held by a cancelled order for good."""
    product = new_product(pool, 10)
    created = decode_order_created(order_created([(product.id, 3)]))
    cancelled = OrderNoticeV1(ORDER_CANCELLED, uuid.uuid4(), created.order_id, "customer_request")
    outcomes: dict[str, object] = {}
    with pool.connection() as blocker:
        # Another order holds the product's row (a hot product): order.created will wait on it.
        blocker.execute("SELECT 1 FROM products WHERE id = %s FOR UPDATE", (product.id,))
        creating = threading.Thread(
            target=lambda: outcomes.update(created=handle_order_created(created, UnitOfWork(pool), now))
        )
        creating.start()
        _wait_for_a_lock_wait(pool)  # order.created is past its cancellation check, waiting on the row
        cancelling = threading.Thread(target=handle_order_cancelled, args=(cancelled, UnitOfWork(pool), now))
        cancelling.start()
        cancelling.join(1.0)  # before the fix it commits here, without seeing a reservation
        blocker.commit()  # the hot product's lock goes
    creating.join(10)
    cancelling.join(10)
    assert not creating.is_alive()
    assert not cancelling.is_alive()
    with pool.connection() as conn:
        held = [r for r in reservations_of_ended_orders(conn) if r[0] == created.order_id]
        broken = [r for r in stock_that_does_not_add_up(conn) if r[0] == product.sku]
    assert held == []
    assert broken == []
    assert stock(pool, product.id) == (10, 0)


def _wait_for_a_lock_wait(pool, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    with pool.connection() as conn:
        conn.autocommit = True
        while not conn.execute(
            "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            " AND query ILIKE '%%FROM products%%FOR UPDATE%%'"
        ).fetchone():
            assert time.monotonic() < deadline, "order.created never waited on the product's lock"
            time.sleep(0.02)


def test_a_burst_is_reserved_in_batches_each_order_once(settings, pool):
    """Orders piled up in a lane are reserved several per transaction (their rows share a
    transaction id), and each exactly once: a record delivered twice in the burst, an order already
    handled and a poison record among them change nothing."""
    product = new_product(pool, 1000)
    handled_before = order_created([(product.id, 7)])
    assert handle_order_created(decode_order_created(handled_before), UnitOfWork(pool), now) == "reserved"
    burst = [order_created([(product.id, 1)]) for _ in range(40)]
    values = [handled_before, *burst[:20], burst[5], b"not json", *burst[20:]]
    agent_run(settings, values, lambda: stock(pool, product.id) == (953, 47), timeout=30, batched=True)
    assert stock(pool, product.id) == (953, 47)
    with pool.connection() as conn:
        (rows, transactions) = conn.execute(
            "SELECT count(*), count(DISTINCT xmin::text) FROM stock_reservations WHERE product_id = %s",
            (product.id,),
        ).fetchone()
    assert rows == 41
    assert transactions < 41, "every reservation had a transaction of its own"


def test_batches_in_several_lanes_on_the_same_products_do_not_deadlock(settings, pool):
    """Lanes reserving, each a batch at a time, for orders of the same few products (two lines
    each, in any order): every order reserved once, no batch rolled back (a deadlock would roll
    one back and show in the fallback counter)."""
    products = [new_product(pool, 10_000) for _ in range(5)]
    orders = [
        order_created([(products[n % 5].id, 1), (products[(n * 3 + 1) % 5].id, 2)])
        if n % 5 != (n * 3 + 1) % 5
        else order_created([(products[n % 5].id, 3)])
        for n in range(400)
    ]
    topic = agent_run(
        settings,
        orders,
        lambda: sum(stock(pool, p.id)[1] for p in products) == 1200,
        timeout=60,
        partitions=4,
        batched=True,
    )
    assert sum(stock(pool, p.id)[1] for p in products) == 1200
    assert all(sum(stock(pool, p.id)) == 10_000 for p in products)
    assert not REGISTRY.get_sample_value("shop_stream_batch_fallbacks_total", {"topic": topic})
    assert REGISTRY.get_sample_value("shop_stream_batch_records_count", {"topic": topic})
