"""`python -m bench.flash_sale` (`make bench-flash-sale`): issue 11's `flash-sale` scenario.

N concurrent buyers of one product with little stock; time until every order is settled; oversold must be 0.
Issue 20's size, the default and `make bench`'s: 1,000 one-unit orders (200 customers × 5) at once on 100
units, giving `flash_sale_settled_s`, `flash_sale_buyers` and `flash_sale_oversold` (bench/figures.py).

1. A real stack, as bench/orders.py runs it (bench/stack.py `bench_stack`: `shop run all` on free ports,
   its own RabbitMQ vhost, rate limits lifted, OTEL_SDK_DISABLED=true).
2. Setup: an admin creates one product with `--stock` S units; C customers are registered, verified
   (Mailpit) and logged in (bench/shoppers.py `signed_up`). Once the order side knows the price, a probe
   order of S + 1 units is placed: it is accepted (201) and then rejected by the inventory, so it takes
   nothing from the stock.
3. At t0, all N = C × `--orders-each` orders (1 line, quantity 1, a unique Idempotency-Key) are sent at
   once (asyncio + aiohttp, no connection limit). Each order is then polled (GET /api/v1/orders/{id},
   5 ms doubling up to 50 ms) until its stock is `reserved` or `rejected` (status CANCELLED,
   out_of_stock). Settled = the last order observed settled, from t0 (so it includes up to one poll
   interval).
4. Checks: reserved = min(S, N), rejected = N - reserved, oversold = reserved - S = 0, and in the
   catalog database: the product's stock_available = 0 (when N >= S), stock_reserved = S, the sum of its
   stock_reservations = S, nothing negative. Any failed check: exit 1.
5. var/bench/flash-sale.json and flash-sale.md (the table is printed too).

The orders and the product stay in the database, like bench/orders.py's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psycopg

from bench import report
from bench.openloop import quantile
from bench.shoppers import create_product, priced, sign_up_customers, signed_up
from bench.stack import bench_stack
from harness.http import call
from harness.stack import ShopStack

CATALOG_DB_URL = "postgresql://catalog:catalog@127.0.0.1:5432/catalog"
SETTLED = ("reserved", "rejected")


@dataclass
class Outcome:
    """One buyer's order: how it was placed and how it settled."""

    index: int
    order_id: str | None = None
    place_seconds: float | None = None  # request sent → answered
    answered_at: float | None = None  # seconds after t0
    place_error: str | None = None
    stock: str | None = None
    status: str | None = None
    cancel_reason: str | None = None
    settled_at: float | None = None  # seconds after t0


@dataclass
class Setup:
    product_id: str
    tokens: list[str]
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def setup(stack: ShopStack, customers: int, stock: int) -> Setup:
    started = time.monotonic()
    base = stack.base
    admin = signed_up(base, f"bench-admin-{uuid.uuid4().hex[:10]}@example.test", admin=True)
    product_id = create_product(base, admin, "FLASH", "Flash-sale tea", "bench/flash_sale.py", stock)
    tokens = sign_up_customers(base, customers, "bench-flash")
    # The probe asks for more than the stock: accepted once the order side knows the price, then
    # rejected by the inventory (nothing held).
    deadline = time.monotonic() + 60
    probe_id = str(priced(base, tokens[0], product_id, stock + 1, deadline).json()["id"])
    while True:  # wait for the probe's rejection so that the sale starts from a quiet inventory
        seen = call(base, "GET", f"/api/v1/orders/{probe_id}", token=tokens[0])
        if seen.status == 200 and seen.json()["stock"] == "rejected":
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: the probe order {probe_id} was never rejected: {seen}")
        time.sleep(0.1)
    return Setup(product_id, tokens, time.monotonic() - started)


async def buy(
    session: aiohttp.ClientSession,
    base: str,
    product_id: str,
    token: str,
    outcome: Outcome,
    t0: float,
    gate: asyncio.Semaphore | None,
) -> None:
    if gate is None:
        await place_and_settle(session, base, product_id, token, outcome, t0)
        return
    async with gate:
        await place_and_settle(session, base, product_id, token, outcome, t0)


async def place_and_settle(
    session: aiohttp.ClientSession, base: str, product_id: str, token: str, outcome: Outcome, t0: float
) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    body = {"items": [{"product_id": product_id, "quantity": 1}]}
    headers = {**auth, "Idempotency-Key": f"flash-{uuid.uuid4()}"}
    sent = time.perf_counter()
    try:
        async with session.post(f"{base}/api/v1/orders", json=body, headers=headers) as r:
            placed = await r.json(content_type=None)
            outcome.answered_at = time.perf_counter() - t0
            outcome.place_seconds = time.perf_counter() - sent
            if r.status not in (201, 202):  # 202: still processing; Location leads to the order
                outcome.place_error = f"place {r.status}"
                return
            location = r.headers.get("Location", "")
        if r.status == 202:
            placed = await followed_placement(session, base + location, auth)
            if placed is None:
                outcome.place_error = "placed (202), then refused or never placed"
                return
    except (aiohttp.ClientError, TimeoutError) as exc:
        outcome.place_error = f"place {type(exc).__name__}"
        return
    outcome.order_id = str(placed["id"])
    order = placed
    pause = 0.005
    deadline = time.monotonic() + 90
    while order["stock"] not in SETTLED:
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.05)
        try:
            async with session.get(f"{base}/api/v1/orders/{outcome.order_id}", headers=auth) as r:
                if r.status == 200:
                    order = await r.json()
        except (aiohttp.ClientError, TimeoutError):
            continue
    outcome.stock = str(order["stock"])
    outcome.status = str(order["status"])
    outcome.cancel_reason = order.get("cancel_reason")
    if outcome.stock in SETTLED:
        outcome.settled_at = time.perf_counter() - t0


PLACEMENT_WAIT = 60.0  # seconds a placement answered 202 may take to have an outcome


async def followed_placement(
    session: aiohttp.ClientSession, url: str, auth: dict[str, str]
) -> dict[str, Any] | None:
    """The order a placement answered 202 became (its Location redirects there once it exists);
    None when the placement was refused or had no outcome within PLACEMENT_WAIT."""
    deadline = time.monotonic() + PLACEMENT_WAIT
    while time.monotonic() < deadline:
        async with session.get(url, headers=auth) as r:  # follows the 303 to the order
            answer = await r.json(content_type=None)
            if r.status == 200 and "id" in answer:
                return dict(answer)
            if r.status >= 400:
                return None
        await asyncio.sleep(0.05)
    return None


async def sale(base: str, ready: Setup, orders_each: int, max_in_flight: int) -> tuple[list[Outcome], float]:
    gate = asyncio.Semaphore(max_in_flight) if max_in_flight > 0 else None
    outcomes = [Outcome(i) for i in range(len(ready.tokens) * orders_each)]
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        t0 = time.perf_counter()
        await asyncio.gather(
            *(
                buy(session, base, ready.product_id, ready.tokens[o.index % len(ready.tokens)], o, t0, gate)
                for o in outcomes
            )
        )
        wall = time.perf_counter() - t0
    return outcomes, wall


def catalog_state(db_url: str, product_id: str) -> dict[str, Any]:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT stock_available, stock_reserved FROM products WHERE id = %s", (product_id,)
        ).fetchone()
        assert row is not None, product_id
        held = conn.execute(
            "SELECT count(*), coalesce(sum(quantity), 0) FROM stock_reservations WHERE product_id = %s",
            (product_id,),
        ).fetchone()
        negative = conn.execute(
            "SELECT count(*) FROM products WHERE stock_available < 0 OR stock_reserved < 0"
        ).fetchone()
    assert held is not None
    assert negative is not None
    return {
        "stock_available": int(row[0]),
        "stock_reserved": int(row[1]),
        "reservations": int(held[0]),
        "reserved_units": int(held[1]),
        "products_with_negative_stock": int(negative[0]),
    }


def figures(outcomes: list[Outcome], stock: int, wall: float, db: dict[str, Any]) -> dict[str, Any]:
    n = len(outcomes)
    reserved = sum(o.stock == "reserved" for o in outcomes)
    rejected = sum(o.stock == "rejected" for o in outcomes)
    out_of_stock = sum(o.status == "CANCELLED" and o.cancel_reason == "out_of_stock" for o in outcomes)
    failed = sum(o.place_error is not None for o in outcomes)
    unsettled = sum(o.place_error is None and o.settled_at is None for o in outcomes)
    errors: dict[str, int] = {}
    for o in outcomes:
        if o.place_error:
            errors[o.place_error] = errors.get(o.place_error, 0) + 1
    placing = sorted(o.place_seconds for o in outcomes if o.place_seconds is not None and not o.place_error)
    answered = [o.answered_at for o in outcomes if o.answered_at is not None]
    settled = [o.settled_at for o in outcomes if o.settled_at is not None]
    expected = min(stock, n)
    checks = {
        "every order placed (201/202)": failed == 0,
        "every order settled": unsettled == 0 and failed == 0,
        f"reserved = min(S, N) = {expected}": reserved == expected,
        f"rejected = N - reserved = {n - reserved}": rejected == n - reserved,
        "rejected orders CANCELLED out_of_stock": out_of_stock == rejected,
        "oversold = 0": reserved - stock <= 0,
        f"db stock_available = {stock - expected}": db["stock_available"] == stock - expected,
        f"db stock_reserved = {expected}": db["stock_reserved"] == expected,
        f"db stock_reservations sum = {expected}": db["reserved_units"] == expected,
        "db nothing negative": db["products_with_negative_stock"] == 0 and db["stock_available"] >= 0,
    }
    return {
        "orders": n,
        "placed": n - failed,
        "place_errors": errors,
        "reserved": reserved,
        "rejected": rejected,
        "cancelled_out_of_stock": out_of_stock,
        "unsettled": unsettled,
        "oversold": max(reserved - stock, 0, db["stock_reserved"] - stock),
        "settle_all_seconds": round(max(settled), 3) if settled else None,
        "settle_p50_seconds": round(quantile(sorted(settled), 0.5), 3) if settled else None,
        "placement_all_seconds": round(max(answered), 3) if answered else None,
        "place_p50_ms": round(quantile(placing, 0.5) * 1000, 1),
        "place_p99_ms": round(quantile(placing, 0.99) * 1000, 1),
        "wall_seconds": round(wall, 3),
        "catalog_db": db,
        "checks": checks,
        "passed": all(checks.values()),
    }


def markdown(results: dict[str, Any]) -> str:
    r = results["result"]
    db = r["catalog_db"]
    rows = [
        (
            "buyers (orders, quantity 1 each)",
            f"{r['orders']} ({results['customers']} customers × {results['orders_each']})",
        ),
        ("buyers in flight at once", results["max_in_flight"] or "all (launched together at t0)"),
        ("stock S", results["stock"]),
        ("placed (201/202)", r["placed"]),
        ("reserved", r["reserved"]),
        ("rejected (CANCELLED, out_of_stock)", f"{r['rejected']} ({r['cancelled_out_of_stock']})"),
        ("unsettled", r["unsettled"]),
        ("**oversold**", f"**{r['oversold']}**"),
        ("time until every order settled (from t0)", f"{r['settle_all_seconds']} s"),
        ("median order settled at", f"{r['settle_p50_seconds']} s"),
        ("all placements answered by", f"{r['placement_all_seconds']} s"),
        ("placement latency p50 / p99", f"{r['place_p50_ms']:.0f} / {r['place_p99_ms']:.0f} ms"),
        ("catalog db: stock_available / stock_reserved", f"{db['stock_available']} / {db['stock_reserved']}"),
        ("catalog db: stock_reservations (rows, units)", f"{db['reservations']}, {db['reserved_units']}"),
        ("catalog db: products with negative stock", db["products_with_negative_stock"]),
    ]
    lines = ["| flash-sale | measured |", "| --- | --- |"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    lines += ["", "| check | |", "| --- | --- |"]
    lines += [f"| {name} | {'pass' if ok else '**FAIL**'} |" for name, ok in r["checks"].items()]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    db_url = os.environ.get("SHOP_CATALOG_DB_URL", CATALOG_DB_URL)
    results: dict[str, Any] = {
        "scenario": "flash-sale: N concurrent buyers of one product with little stock (issue 11)",
        "stock": args.stock,
        "customers": args.customers,
        "orders_each": args.orders_each,
        "max_in_flight": args.max_in_flight or None,
        "settled": "stock reserved, or rejected (order CANCELLED out_of_stock), as GET /orders/{id} shows it",
        "otel_sdk_disabled": True,
        "machine": report.machine(db_url),
    }
    with bench_stack(Path("var/log/bench-flash-sale.log")) as stack:
        print(f"stack up on {stack.base}; setting up {args.customers} customers and {args.stock} units")
        ready = setup(stack, args.customers, args.stock)
        results["product_id"] = ready.product_id
        results["setup_seconds"] = round(ready.seconds, 1)
        n = args.customers * args.orders_each
        print(f"setup done in {ready.seconds:.0f} s; {n} orders at once for {args.stock} units")
        outcomes, wall = asyncio.run(sale(stack.base, ready, args.orders_each, args.max_in_flight))
        time.sleep(1)  # the inventory has answered every order: its rows are committed
        db = catalog_state(db_url, ready.product_id)
    results["result"] = figures(outcomes, args.stock, wall, db)
    results["run_seconds"] = round(time.monotonic() - started)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.flash_sale", description=__doc__)
    parser.add_argument("--stock", type=int, default=100, help="units of the one product (S)")
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--orders-each", type=int, default=5, help="orders per customer (N = customers × it)")
    parser.add_argument("--max-in-flight", type=int, default=0, help="buyers at once (0: all N at t0)")
    args = parser.parse_args()
    if not 1 <= args.stock < 1000:
        raise SystemExit(
            "bench: --stock must be in [1, 999] (the probe orders stock + 1 units, 1000 at most)"
        )
    results = run(args)
    report.publish("flash-sale", results, markdown(results))
    if results["result"]["oversold"]:
        print(f"bench: OVERSOLD by {results['result']['oversold']}")
    return 0 if results["result"]["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
