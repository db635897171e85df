"""`python -m bench.inventory`: reservations per second by the inventory agent, and its lag.

1. `shop run streams` (the agents) against the local stack (`make up`), OTEL_SDK_DISABLED=true, and
   no relay: the agent is measured alone (its answers stay in the outbox, and are deleted at the end:
   they are about orders that do not exist, which the order side would rightly dead-letter). It
   refuses to run while another stack's relay holds the catalog's outbox lease.
2. P products (default 20) with 10,000,000 units each, made by the catalog's own create handler
   (event, projection, product.created). The agent's consumer group must have caught up with
   `order.created` first: a backlog left by someone else would count against it.
3. Burst: N `order.created` events (schema 1.0, one line of quantity 1 for a product picked at random,
   keyed by order id as placement keys them) produced straight onto Kafka at once. Reservations made
   = units reserved over the P products (`stock_reserved`, one per event), read every 0.2 s; lag =
   events produced - reservations made. Reservations per second = N / (last reservation - first
   event produced).
4. Steady: events at 50% of the burst's rate, open loop (each sent at its due time whatever the
   agent does) for S seconds; lag over time, and each event's latency from its send to the agent's
   reservation (the StockReserved event's `occurred_at`, the same machine's clock).
5. Baseline: pgbench replaying the reservation's SQL (RESERVATION_SCRIPT: what
   `shop.handlers.inventory.handle_order_created` runs) on the same PostgreSQL, 4 clients, on scratch
   products that exist only as rows of `products` and are deleted afterwards with all it wrote.

The bench products keep their reservations and their events.
Results: var/bench/inventory.json and inventory.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka import Producer

from bench import report
from bench.agents import group_lag
from bench.catalog_scripts import PRODUCT_COLUMNS, RESERVED, product_event, product_updated, stock_reserved
from bench.openloop import quantile
from bench.pgbench import WAKE_RELAY, OutboxRow, outbox_rows, require_pgbench, run_pgbench, unit_end
from bench.processes import CpuMeter, Running, refuse_running_relays, shop_process
from harness import progress
from shop import bootstrap
from shop.bootstrap import kafka_config
from shop.domain.ids import uuid7
from shop.domain.orders import PricedLine
from shop.handlers.products import CreateProduct, handle_create
from shop.schemas.orders import ORDER_CREATED, encode_order_created
from shop.settings import Settings
from shop.streams.agents import CONSUMED_TOPICS

STOCK = 10_000_000
PRICE_CENTS = 1000
SAMPLE = 0.2  # seconds between two counts of the reservations made
SCRATCH_EVENTS = "pgbench_product_events"
say = partial(progress.say, "bench.inventory")

# The order's id, from the script's random :a and :b.
_ORDER_ID = "(lpad(to_hex(:b::bigint), 16, '0') || lpad(to_hex(:a::bigint), 16, '0'))::uuid"
# The product's StockReserved event and its projection's new row.
_STOCK_RESERVED = product_event(SCRATCH_EVENTS, f"{_ORDER_ID}::text", "StockReserved", *RESERVED)
# The reservation's outbox rows, product.updated (the snapshot after it) and the stock.reserved
# answer, with the run's tag in their headers (by which they are deleted afterwards).
_TAGGED = "jsonb_build_object('x-bench', :tag::text)"
_RESERVATION_ROWS = [
    OutboxRow("kafka", "product.updated", ":p_id::text", product_updated("StockReserved", *RESERVED)),
    OutboxRow("kafka", "stock.reserved", f"{_ORDER_ID}::text", stock_reserved(f"{_ORDER_ID}::text")),
]

# One reservation as handle_order_created runs it for a one-line order (a lone record:
# shop/streams/saga.py SagaAgents.inventory; under bursts the agent takes several records in one
# transaction, which this per-order baseline does not), sent as psycopg's pipeline mode sends it,
# round trip for round trip (shop/db/unit_of_work.py; bench/lifecycle.py explains the pattern):
# BEGIN on its own; the order's advisory lock (shop/db/products.py lock_order) with the inbox record
# (read); reserved before or cancelled (shop/db/products.py reserved_or_cancelled: one read of two
# EXISTS); the product locked; its StockReserved event (seq read); then, in one round trip, the
# projection's new row (every column written, as update_product does), the reservation
# (insert_reservation), and the outbox rows, product.updated and the stock.reserved answer, in one
# INSERT ... SELECT FROM unnest (shop/db/outbox.py insert_messages);
# COMMIT on its own; the unit's pipeline closing with nothing queued (a bare Sync); then the relay's
# wake-up, in autocommit. 11 statements, 9 round trips. The outbox rows are inserted already
# published so that no relay sends them (same heap and unique-index writes), tagged in their headers
# so that they are deleted afterwards. :products is an array literal of the scratch products' ids;
# :k picks one. SCRATCH_EVENTS is a scratch copy of product_events (same columns, keys and indexes): that
# table is append-only, and pgbench's events must not stay in the catalog's history.
RESERVATION_SCRIPT = rf"""
\set k random(1, :count)
\set a random(1, 9223372036854775806)
\set b random(1, 9223372036854775806)
BEGIN;
\startpipeline
SELECT pg_advisory_xact_lock(hashtextextended({_ORDER_ID}::text, 0));
INSERT INTO inbox (consumer, event_id)
VALUES ('inventory-pgbench', (lpad(to_hex(:a::bigint), 16, '0') || lpad(to_hex(:b::bigint), 16, '0'))::uuid)
ON CONFLICT DO NOTHING RETURNING 1;
\endpipeline
SELECT EXISTS (SELECT 1 FROM stock_reservations WHERE order_id = {_ORDER_ID}),
       EXISTS (SELECT 1 FROM cancelled_orders WHERE order_id = {_ORDER_ID});
SELECT {PRODUCT_COLUMNS} FROM products WHERE id = (:products::uuid[])[:k] FOR UPDATE \gset p_
{_STOCK_RESERVED}INSERT INTO stock_reservations (order_id, product_id, quantity)
VALUES ({_ORDER_ID}, :p_id::uuid, 1);
{outbox_rows("outbox", _RESERVATION_ROWS, _TAGGED, published=True)}\endpipeline
{unit_end(WAKE_RELAY)}"""


# --- the products -------------------------------------------------------------------------------


def create_products(settings: Settings, count: int) -> list[uuid.UUID]:
    """`count` products with STOCK units each, made as an admin's command would make them."""
    ids = []
    needs = bootstrap.build_dependencies(settings)
    for n in range(count):
        fields = {
            "sku": f"BENCH-INV-{uuid.uuid4().hex[:10]}-{n}",
            "name": f"Inventory benchmark item {n}",
            "description": "bench/inventory.py",
            "price_cents": PRICE_CENTS,
            "currency": "EUR",
            "stock": STOCK,
        }
        ids.append(handle_create(CreateProduct(fields), needs.unit_of_work("catalog"), needs.clock).id)
    return ids


def reserved_units(conn: psycopg.Connection[Any], products: list[uuid.UUID]) -> int:
    row = conn.execute(
        "SELECT coalesce(sum(stock_reserved), 0) FROM products WHERE id = ANY(%s)", (products,)
    ).fetchone()
    return int(row[0]) if row else 0


@contextmanager
def scratch_products(db_url: str, count: int) -> Iterator[list[uuid.UUID]]:
    """Rows of `products` for pgbench to reserve from, with no event behind them, and the scratch
    events table; removed at the end with every row pgbench wrote."""
    ids = [uuid7() for _ in range(count)]
    tag = f"pgbench-{ids[0]}"
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {SCRATCH_EVENTS}")
        conn.execute(f"CREATE TABLE {SCRATCH_EVENTS} (LIKE product_events INCLUDING ALL EXCLUDING DEFAULTS)")
        conn.execute(f"CREATE SEQUENCE {SCRATCH_EVENTS}_seq OWNED BY {SCRATCH_EVENTS}.seq")
        conn.execute(f"ALTER TABLE {SCRATCH_EVENTS} ALTER seq SET DEFAULT nextval('{SCRATCH_EVENTS}_seq')")
        for n, pid in enumerate(ids):
            conn.execute(
                "INSERT INTO products (id, sku, name, description, price_cents, currency, stock_available,"
                " stock_reserved, version, created_at, updated_at)"
                " VALUES (%s, %s, %s, %s, %s, 'EUR', %s, 0, 1, now(), now())",
                (
                    pid,
                    f"PGBENCH-{tag[-12:]}-{n}",
                    f"pgbench item {n}",
                    "bench/inventory.py",
                    PRICE_CENTS,
                    STOCK,
                ),
            )
    try:
        yield ids
    finally:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("DELETE FROM stock_reservations WHERE product_id = ANY(%s)", (ids,))
            conn.execute(f"DROP TABLE {SCRATCH_EVENTS}")
            conn.execute("DELETE FROM products WHERE id = ANY(%s)", (ids,))
            conn.execute("DELETE FROM inbox WHERE consumer = 'inventory-pgbench'")
            conn.execute(
                "DELETE FROM outbox WHERE headers->>'x-bench' = %s AND published_at IS NOT NULL", (tag,)
            )


def pgbench_baseline(db_url: str, products: int, clients: int, seconds: int) -> dict[str, Any]:
    with scratch_products(db_url, products) as ids:
        variables = {
            "count": str(len(ids)),
            "products": "{" + ",".join(map(str, ids)) + "}",
            "tag": f"pgbench-{ids[0]}",
        }
        return run_pgbench(
            db_url,
            RESERVATION_SCRIPT,
            variables,
            clients,
            seconds,
            "bench/inventory.py RESERVATION_SCRIPT",
        )


# --- Kafka ----------------------------------------------------------------------------------------


def delete_unsent(db_url: str, products: list[str], orders: list[str]) -> None:
    """The bench's outbox rows no relay sent (its products' events, its answers for made-up orders)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "DELETE FROM outbox WHERE published_at IS NULL AND message_key = ANY(%s)", (products + orders,)
        )


def wait_caught_up(settings: Settings, timeout: float = 300) -> None:
    """Until the agents have read every record of every topic they consume: a backlog would slow
    the agent down during a measurement (one consumer reads them all)."""
    deadline = time.monotonic() + timeout
    while (lag := group_lag(settings, CONSUMED_TOPICS)) > 0:
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: the agents' group still has {lag} records to read")
        say(f"waiting for the agents to read {lag} records")
        time.sleep(2)


def order_created(products: list[uuid.UUID], rng: random.Random) -> tuple[str, bytes]:
    """(key, value) of one order.created for one unit of a random product."""
    order_id = uuid7()
    line = PricedLine(rng.choice(products), 1, PRICE_CENTS)
    payload = encode_order_created(
        uuid7(), datetime.now(UTC), order_id, uuid.uuid4(), [line], PRICE_CENTS, "EUR"
    )
    return str(order_id), json.dumps(payload).encode()


def new_producer(settings: Settings) -> Producer:
    return Producer(kafka_config(settings, acks="all", **{"enable.idempotence": True, "linger.ms": 5}))


# --- the two phases -------------------------------------------------------------------------------


def follow(
    conn: psycopg.Connection[Any],
    products: list[uuid.UUID],
    start_units: int,
    expected: int,
    produced: list[float],
    started: float,
    timeout: float,
) -> tuple[float, list[tuple[float, int]]]:
    """Counts reservations every SAMPLE s until `expected` are made: (time of the last, [(t, lag)])."""
    samples: list[tuple[float, int]] = []
    deadline = time.monotonic() + timeout
    while True:
        now = time.monotonic()
        made = reserved_units(conn, products) - start_units
        samples.append((round(now - started, 3), len(produced) - made))
        if made >= expected:
            return now, samples
        if now > deadline:
            raise SystemExit(f"bench: only {made} of {expected} reservations after {timeout:.0f} s")
        time.sleep(SAMPLE)


def burst(
    settings: Settings,
    conn: psycopg.Connection[Any],
    products: list[uuid.UUID],
    events: int,
    orders: list[str],
) -> dict[str, Any]:
    rng = random.Random(1)
    batch = [order_created(products, rng) for _ in range(events)]  # made before the clock starts
    orders += [key for key, _ in batch]
    producer = new_producer(settings)
    start_units = reserved_units(conn, products)
    produced: list[float] = []
    started = time.monotonic()
    for key, value in batch:
        while True:
            try:
                producer.produce(ORDER_CREATED, value=value, key=key)
                break
            except BufferError:  # the local queue is full: let librdkafka send some
                producer.poll(0.05)
        produced.append(started)
    producer.flush(60)
    all_sent = time.monotonic() - started
    say(f"burst: {events} events on Kafka in {all_sent:.2f} s; counting reservations")
    finished, samples = follow(conn, products, start_units, events, produced, started, timeout=600)
    wall = finished - started
    return {
        "events": events,
        "produced_in_s": round(all_sent, 3),
        "seconds": round(wall, 2),
        "reservations_per_s": round(events / wall, 1),
        "lag_samples": samples,
    }


def steady(
    settings: Settings,
    conn: psycopg.Connection[Any],
    products: list[uuid.UUID],
    rate: float,
    seconds: float,
    orders: list[str],
) -> dict[str, Any]:
    rng = random.Random(2)
    producer = new_producer(settings)
    start_units = reserved_units(conn, products)
    count = int(rate * seconds)
    sent_at: dict[str, float] = {}  # order id -> wall-clock send time
    produced: list[float] = []
    samples: list[tuple[float, int]] = []
    started = time.monotonic()
    next_sample = started
    for i in range(count):
        due = started + i / rate
        while (now := time.monotonic()) < due:
            producer.poll(0)
            if now >= next_sample:
                made = reserved_units(conn, products) - start_units
                samples.append((round(now - started, 3), len(produced) - made))
                next_sample += SAMPLE
            time.sleep(min(due - now, 0.002))
        key, value = order_created(products, rng)
        sent_at[key] = time.time()
        orders.append(key)
        producer.produce(ORDER_CREATED, value=value, key=key)
        produced.append(now)
        if i % 200 == 0:
            print(f"\r  steady {rate:.0f}/s: {i}/{count} sent", end="", file=sys.stderr, flush=True)
    producer.flush(60)
    print(file=sys.stderr)
    _, tail = follow(conn, products, start_units, count, produced, started, timeout=300)
    samples += tail
    latencies = reservation_latencies(conn, products, sent_at)
    lags = sorted(lag for _, lag in samples)
    return {
        "offered_rate": rate,
        "seconds": seconds,
        "events": count,
        "lag_p50": quantile(lags, 0.5),
        "lag_p99": quantile(lags, 0.99),
        "lag_max": lags[-1] if lags else 0,
        "latency_p50_ms": round(quantile(latencies, 0.5) * 1000, 1),
        "latency_p95_ms": round(quantile(latencies, 0.95) * 1000, 1),
        "latency_p99_ms": round(quantile(latencies, 0.99) * 1000, 1),
        "latency_max_ms": round(latencies[-1] * 1000, 1) if latencies else 0.0,
        "lag_samples": samples,
    }


def reservation_latencies(
    conn: psycopg.Connection[Any], products: list[uuid.UUID], sent_at: dict[str, float]
) -> list[float]:
    """Seconds from each event's send to its StockReserved event (the agent's clock at handling)."""
    rows = conn.execute(
        "SELECT data->>'order_id', extract(epoch FROM occurred_at) FROM product_events"
        " WHERE product_id = ANY(%s) AND type = 'StockReserved' AND data->>'order_id' = ANY(%s)",
        (products, list(sent_at)),
    ).fetchall()
    return sorted(float(at) - sent_at[order] for order, at in rows)


# --- the run ----------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    clock = time.monotonic()
    settings = Settings.from_env(os.environ)
    db_url = settings.databases["catalog"].primary_url
    refuse_running_relays({"catalog": db_url}, "bench.inventory")
    env = {"OTEL_SDK_DISABLED": "true"}
    log = Path("var/log/bench-inventory.log")
    results: dict[str, Any] = {
        "scenario": "inventory: order.created straight onto Kafka; reservations by the inventory agent",
        "products": args.products,
        "machine": report.machine(db_url),
    }
    with ExitStack() as stack:
        streams: Running = stack.enter_context(shop_process("streams", env, log=log))
        products = create_products(settings, args.products)
        orders: list[str] = []
        stack.callback(delete_unsent, db_url, [str(p) for p in products], orders)
        wait_caught_up(settings)
        meter = CpuMeter(lambda: {"streams": streams.pid})
        with psycopg.connect(db_url, autocommit=True) as conn:
            meter.start()
            results["burst"] = burst(settings, conn, products, args.events, orders)
            results["burst"]["cpu_percent_of_one_core"] = meter.stop()
            say(
                f"burst: {args.events} reservations in {results['burst']['seconds']} s:"
                f" {results['burst']['reservations_per_s']:.0f}/s"
            )
            rate = round(results["burst"]["reservations_per_s"] * args.steady_fraction, 1)
            wait_caught_up(settings)
            meter.start()
            results["steady"] = steady(settings, conn, products, rate, args.steady_seconds, orders)
            results["steady"]["cpu_percent_of_one_core"] = meter.stop()
            s = results["steady"]
            say(
                f"steady {rate:g}/s: lag p50 {s['lag_p50']} / p99 {s['lag_p99']} / max {s['lag_max']};"
                f" send → reserved p50 {s['latency_p50_ms']} ms, p99 {s['latency_p99_ms']} ms"
            )
    say(f"pgbench baseline: the reservation's SQL, {args.pgbench_clients} clients, {args.pgbench_seconds} s")
    baseline = pgbench_baseline(db_url, args.products, args.pgbench_clients, args.pgbench_seconds)
    results["baseline"] = baseline
    ratio = results["burst"]["reservations_per_s"] / baseline["tps"] if baseline["tps"] else 0.0
    results["ratio"] = round(ratio, 4)
    results["target"] = 0.5
    results["target_met"] = ratio >= 0.5
    results["run_seconds"] = round(time.monotonic() - clock)
    return results


def markdown(results: dict[str, Any]) -> str:
    b, s, base = results["burst"], results["steady"], results["baseline"]
    cpu = ", ".join(
        f"{k} {v:.0f}" for k, v in sorted(b["cpu_percent_of_one_core"].items(), key=lambda kv: -kv[1])
    )
    met = "met" if results["target_met"] else "NOT met"
    return (
        "\n".join(
            [
                "| inventory scenario | measured |",
                "|---|---|",
                f"| burst: {b['events']:,} order.created at once ({results['products']} products)"
                f" | **{b['reservations_per_s']:,.0f} reservations/s** ({b['seconds']} s to the last) |",
                f"| steady at {s['offered_rate']:g}/s for {s['seconds']:g} s: lag (events) p50 / p99 / max"
                f" | {s['lag_p50']} / {s['lag_p99']} / {s['lag_max']} |",
                f"| steady: sent → reserved p50 / p95 / p99 / max"
                f" | {s['latency_p50_ms']:.0f} / {s['latency_p95_ms']:.0f} / {s['latency_p99_ms']:.0f}"
                f" / {s['latency_max_ms']:.0f} ms |",
                f"| pgbench, the reservation's SQL ({base['clients']} clients, {base['seconds']} s)"
                f" | {base['tps']:,.0f} transactions/s |",
                f"| burst ÷ pgbench (target ≥ 50%) | {results['ratio'] * 100:.1f}% ({met}) |",
                f"| CPU during the burst, % of one core | {cpu} |",
            ]
        )
        + "\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.inventory",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--events", type=int, default=20_000, help="order.created events in the burst")
    parser.add_argument("--products", type=int, default=20)
    parser.add_argument("--steady-fraction", type=float, default=0.5, help="of the burst's rate")
    parser.add_argument("--steady-seconds", type=float, default=20)
    parser.add_argument("--pgbench-clients", type=int, default=4)
    parser.add_argument("--pgbench-seconds", type=int, default=15)
    args = parser.parse_args(argv)
    require_pgbench()
    results = run(args)
    report.publish("inventory", results, markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
