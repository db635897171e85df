"""`python -m bench.orders` (`make bench-orders`): customers place and pay orders through the gateway.

1. A real stack: `shop run all` (gateway, workers, streams, relay) on free ports against the local
   stack (`make up`), on a RabbitMQ vhost of its own (deleted at the end), rate limits lifted, and
   OTEL_SDK_DISABLED=true so that tracing does not distort the figures (`--trace-ratio 0.1`: the SDK
   on, 10 % of traces sampled and exported to the stack's Jaeger, the `orders-traced` scenario).
2. Setup: an admin (registered, verified through Mailpit, granted, logged in) creates a product with
   100,000,000 in stock; once the order side knows its price (a probe order answers 201), N customers
   are registered, verified and logged in.
3. Baselines, on the same PostgreSQL, their rows deleted afterwards: pgbench replays the SQL of one
   placement (PGBENCH_SCRIPT), 4 clients, for 20 s; then every SQL transaction of an order's
   lifecycle from placement to paid, on both databases at once (bench/lifecycle.py), about 20 s.
4. Open-loop steps (bench/openloop.py): one operation = POST /orders (1 line, quantity 1, a fresh
   Idempotency-Key), wait until its stock is `reserved` (GET the order, a few ms apart), POST
   /orders/{id}/pay answered 200. Its latency is place → pay answered, measured from the intended
   send time; placement alone is recorded too. The offered rate doubles until a step fails (p99 ≥
   250 ms, errors > 1% or achieved < 95% of offered), then is bisected twice; the sustained rate is
   the highest passing step. A last run at 50% of it gives p50/p95/p99.
5. var/bench/orders.json, orders.md and orders-latency.svg/.png (bench/report.py; `--name`).

The load generator shares the machine's cores with the stack, so the figures are a floor.
The orders placed stay in the database (PAID, as real orders would); their timers fire by the sweeper.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench import report
from bench.openloop import OpenLoopResult, open_loop, quantile
from bench.pgbench import require_pgbench, run_pgbench, scratch_customers, scratch_outbox
from bench.processes import CpuMeter, free_port, stop
from bench.rabbitmq import create_vhost, delete_vhost, vhost_url

VHOST = "shop-bench-orders"
PASSWORD = "correct horse battery staple"
PROCESS_NAMES = ("gateway", "workers", "streams", "relay")
LIMIT_MS = report.LATENCY_LIMIT_MS
ORDERS_RATIO_GOAL = 0.12  # issue 20: sustained orders/s >= 12% of the placement's pgbench tps

# One placement, as place_order runs it with the default unpaid limits (shop/actors/orders.py ->
# shop/handlers/orders.py handle_place_order -> shop/db/orders.py, shop/db/timers.py, shop/db/outbox.py,
# shop/db/unit_of_work.py), sent as psycopg's pipeline mode sends it, round trip for round trip (a
# libpq trace of the code shows the same): BEGIN on its own (conn.transaction() in pipeline mode syncs
# it before the block); the idempotency look-up; the prices; the customer's lock with their unpaid
# orders; then, in one round trip, the order, its line, its 4 timers in one INSERT ... SELECT FROM
# unnest (default SHOP_ORDER_REMINDERS 4h,12h,22h + the 24 h expiry), the idempotency record, and the
# outbox rows in one INSERT ... SELECT FROM unnest (the triggers of the first reminder and of the
# expiry, then order.created); COMMIT on its own; the unit of work's pipeline closing with nothing
# queued (a bare Sync: the empty \startpipeline ... \endpipeline); then, in autocommit, one statement
# for the relay's wake-up and the commit's WAL position (the unit tracks it). The placement answers
# from what it wrote: no read after the commit. The orders tables' only trigger (orders_status_transition,
# BEFORE UPDATE OF status) does not fire on these INSERTs (PostgreSQL runs it where it does, for pgbench
# as for the shop: the payment in bench/lifecycle.py). The outbox rows go unsent, as the
# shop writes them, into a scratch copy of `outbox` that no relay reads (bench/pgbench.py
# SCRATCH_OUTBOX). Each placement is a new customer's (:users prefix + :u): the shop's customers hold
# a few unpaid orders at most, not the run's thousands. Ids are random (the app uses UUIDv7).
# 12 statements, 8 round trips.
PGBENCH_SCRIPT = r"""
\set a random(1, 9223372036854775806)
\set b random(1, 9223372036854775806)
\set u random(1, 281474976710655)
BEGIN;
SELECT request_hash, order_id FROM idempotency_records
 WHERE user_id = (:users || lpad(to_hex(:u::bigint), 12, '0'))::uuid AND key = 'pgb-' || :a;
SELECT product_id, price_cents, currency FROM product_prices WHERE product_id = ANY(ARRAY[:product::uuid]);
\startpipeline
SELECT pg_advisory_xact_lock(hashtextextended((:users || lpad(to_hex(:u::bigint), 12, '0'))::text, 0));
SELECT count(DISTINCT o.id), coalesce(sum(l.quantity), 0)
  FROM orders o JOIN order_lines l ON l.order_id = o.id
 WHERE o.user_id = (:users || lpad(to_hex(:u::bigint), 12, '0'))::uuid AND o.status = 'PENDING';
\endpipeline
\startpipeline
INSERT INTO orders (id, user_id, total_cents, currency, created_at, updated_at, expires_at, customer_email)
VALUES ((lpad(to_hex(:a::bigint), 16, '0') || lpad(to_hex(:b::bigint), 16, '0'))::uuid,
        (:users || lpad(to_hex(:u::bigint), 12, '0'))::uuid,
        1000, 'EUR', now(), now(), now() + interval '24 hours', 'pgbench@example.test');
INSERT INTO order_lines (order_id, product_id, quantity, unit_price_cents)
VALUES ((lpad(to_hex(:a::bigint), 16, '0') || lpad(to_hex(:b::bigint), 16, '0'))::uuid, :product, 1, 1000);
INSERT INTO order_timers (order_id, kind, due_at)
SELECT (lpad(to_hex(:a::bigint), 16, '0') || lpad(to_hex(:b::bigint), 16, '0'))::uuid, kind, due_at
  FROM unnest(ARRAY['reminder_1', 'reminder_2', 'reminder_3', 'expiry']::text[],
              ARRAY[now() + interval '4 hours', now() + interval '12 hours', now() + interval '22 hours',
                    now() + interval '24 hours']::timestamptz[]) AS t(kind, due_at);
INSERT INTO idempotency_records (user_id, key, request_hash, order_id, placement_id)
VALUES ((:users || lpad(to_hex(:u::bigint), 12, '0'))::uuid, 'pgb-' || :a, :request_hash,
        (lpad(to_hex(:a::bigint), 16, '0') || lpad(to_hex(:b::bigint), 16, '0'))::uuid, gen_random_uuid());
INSERT INTO pgbench_outbox (event_id, destination, topic, message_key, payload, headers)
SELECT event_id, destination, topic, message_key, payload, headers
  FROM unnest(
       ARRAY[gen_random_uuid(), gen_random_uuid(), gen_random_uuid()]::uuid[],
       ARRAY['rabbitmq', 'rabbitmq', 'kafka']::text[],
       ARRAY['timers', 'timers', 'order.created']::text[],
       ARRAY[NULL, NULL,
             (lpad(to_hex(:a::bigint), 16, '0') || lpad(to_hex(:b::bigint), 16, '0'))::uuid::text]::text[],
       ARRAY[
         jsonb_build_object(
           'actor_name', 'send_payment_reminder', 'args', '[]'::jsonb,
           'kwargs', jsonb_build_object(
             'order_id', (lpad(to_hex(:a::bigint), 16, '0') || lpad(to_hex(:b::bigint), 16, '0'))::uuid,
             'kind', 'reminder_1'),
           'delay_ms', 14400000),
         jsonb_build_object(
           'actor_name', 'expire_order', 'args', '[]'::jsonb,
           'kwargs', jsonb_build_object(
             'order_id', (lpad(to_hex(:a::bigint), 16, '0') || lpad(to_hex(:b::bigint), 16, '0'))::uuid,
             'kind', 'expiry'),
           'delay_ms', 86400000),
         jsonb_build_object(
           'schema', 'order.created', 'schema_version', '1.0', 'event_id', gen_random_uuid(),
           'occurred_at', now(),
           'order_id', (lpad(to_hex(:a::bigint), 16, '0') || lpad(to_hex(:b::bigint), 16, '0'))::uuid,
           'user_id', (:users || lpad(to_hex(:u::bigint), 12, '0'))::uuid,
           'lines', jsonb_build_array(
             jsonb_build_object('product_id', :product::uuid, 'quantity', 1, 'unit_price_cents', 1000)),
           'total_cents', 1000, 'currency', 'EUR')]::jsonb[],
       ARRAY['{}', '{}', '{}']::jsonb[])
       WITH ORDINALITY AS m(event_id, destination, topic, message_key, payload, headers, n)
 ORDER BY n;
\endpipeline
COMMIT;
\startpipeline
\endpipeline
SELECT pg_notify('outbox', ''), pg_current_wal_lsn()::text;
"""
# What handle_place_order stores as the request's hash (a SHA-256 in hex).
REQUEST_HASH = "9" * 64


# --- HTTP helpers for the setup (synchronous, a few hundred calls) -----------------------------


@dataclass
class Answer:
    status: int
    body: Any


def call(
    base: str,
    method: str,
    path: str,
    body: object = None,
    token: str | None = None,
    extra: dict[str, str] | None = None,
) -> Answer:
    headers = {"Content-Type": "application/json", **(extra or {})}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            raw, status = r.read(), r.status
    except urllib.error.HTTPError as e:
        raw, status = e.read(), e.code
    return Answer(status, json.loads(raw) if raw else None)


def mail_code(address: str, timeout: float = 60) -> str:
    mailpit = os.environ.get("SHOP_MAILPIT_URL", "http://127.0.0.1:8025")
    query = urllib.parse.quote(f'to:"{address}"')
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{mailpit}/api/v1/search?query={query}&limit=5", timeout=10) as r:
            found = json.load(r)["messages"]
        if found:
            with urllib.request.urlopen(f"{mailpit}/api/v1/message/{found[0]['ID']}", timeout=10) as r:
                match = re.search(r"\b(\d{6})\b", json.load(r)["Text"])
            if match:
                return match[1]
        time.sleep(0.3)
    raise SystemExit(f"bench: no verification email to {address} within {timeout:.0f} s")


def signed_up(base: str, email: str, admin: bool = False) -> str:
    """Registers, verifies (code from Mailpit), optionally grants admin, logs in: the access token."""
    registered = call(base, "POST", "/api/v1/auth/register", {"email": email, "password": PASSWORD})
    assert registered.status == 202, registered
    verified = call(base, "POST", "/api/v1/auth/verify", {"email": email, "code": mail_code(email)})
    assert verified.status == 200, verified
    if admin:
        subprocess.run(
            [sys.executable, "-m", "shop", "admin", "grant", email], check=True, capture_output=True
        )
    tokens = call(base, "POST", "/api/v1/auth/login", {"email": email, "password": PASSWORD})
    assert tokens.status == 200, tokens
    return str(tokens.body["access_token"])


# --- the stack and its processes' CPU ----------------------------------------------------------


@dataclass
class Stack:
    ports: dict[str, int] = field(default_factory=lambda: {name: free_port() for name in PROCESS_NAMES})
    child: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    def pids(self) -> dict[str, int]:
        """{process name: pid} of the supervisor's children."""
        assert self.child is not None
        found = {}
        pid = self.child.pid
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            try:
                argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            except FileNotFoundError:
                continue
            if b"run" in argv:
                found[argv[argv.index(b"run") + 1].decode()] = int(child)
        return found


def tracing_env(ratio: float) -> dict[str, str]:
    """OTEL_* settings of a traced run: the SDK on, `ratio` of the traces sampled (a child follows its
    parent's decision) and exported over OTLP to the stack's endpoint (var/stack.env: its Jaeger)."""
    from shop.observability.tracing import export_configured

    env = {
        "OTEL_SDK_DISABLED": "false",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": f"{ratio:g}",
    }
    if not export_configured({**os.environ, **env}):
        raise SystemExit(
            "bench: tracing asked for, but no OTEL_EXPORTER_OTLP_ENDPOINT (run under ops/local/with-env)"
        )
    return {**env, "OTEL_EXPORTER_OTLP_ENDPOINT": os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")}


@contextmanager
def running_stack(log: Path, tracing: dict[str, str] | None = None) -> Iterator[Stack]:
    """`shop run all` on free ports; tracing off (OTEL_SDK_DISABLED=true) unless `tracing` gives the
    OTEL_* settings to run it with."""
    env = dict(os.environ)
    create_vhost(VHOST, env)
    stack = Stack()
    child_env = {
        **env,
        **{f"SHOP_{name.upper()}_PORT": str(port) for name, port in stack.ports.items()},
        "SHOP_RABBITMQ_URL": vhost_url(
            env.get("SHOP_RABBITMQ_URL", "amqp://shop:shop@127.0.0.1:5672/shop"), VHOST
        ),
        "SHOP_RATE_LIMITS": "auth=100000000/60s,products=100000000/60s,orders=100000000/60s",
        "SHOP_LOGIN_FAILURES_PER_CLIENT": "100000000",
        # No span export unless asked for: tracing is a figure of its own (`orders-traced`).
        **(tracing or {"OTEL_SDK_DISABLED": "true"}),
    }
    log.parent.mkdir(parents=True, exist_ok=True)
    stack.child = subprocess.Popen(
        [sys.executable, "-m", "shop", "run", "all"],
        env=child_env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        for name, port in stack.ports.items():
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if stack.child.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"bench: {name} never became ready; see {log}")
                time.sleep(0.3)
        yield stack
    finally:
        stop(stack.child, 60)
        delete_vhost(VHOST, env)


# --- the baseline --------------------------------------------------------------------------------


def pgbench_baseline(db_url: str, product_id: str, clients: int, seconds: int) -> dict[str, Any]:
    with scratch_customers(db_url) as customers, scratch_outbox(db_url):
        variables = {**customers.variables, "product": product_id, "request_hash": REQUEST_HASH}
        return run_pgbench(
            db_url, PGBENCH_SCRIPT, variables, clients, seconds, "bench/orders.py PGBENCH_SCRIPT"
        )


# --- the scenario ----------------------------------------------------------------------------------


@dataclass
class Customers:
    tokens: list[str]
    product_id: str
    place_latency: dict[int, float] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)

    def fail(self, why: str) -> bool:
        self.failures[why] = self.failures.get(why, 0) + 1
        return False


async def place_and_pay(session: aiohttp.ClientSession, base: str, who: Customers, i: int) -> bool:
    token = who.tokens[i % len(who.tokens)]
    auth = {"Authorization": f"Bearer {token}"}
    started = time.perf_counter()
    body = {"items": [{"product_id": who.product_id, "quantity": 1}]}
    # Prefer: wait: the answer comes once the stock is settled, instead of polling GET for it.
    headers = {**auth, "Idempotency-Key": f"bench-{uuid.uuid4()}", "Prefer": "wait=5"}
    async with session.post(f"{base}/api/v1/orders", json=body, headers=headers) as r:
        placed = await r.json()
        if r.status != 201:
            return who.fail(f"place {r.status}")
    who.place_latency[i] = time.perf_counter() - started
    order_id = placed["id"]
    stock = placed["stock"]
    pause = 0.005
    deadline = time.monotonic() + 10
    while stock != "reserved":
        if stock == "rejected" or time.monotonic() > deadline:
            return who.fail(f"stock {stock}")
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.05)
        async with session.get(f"{base}/api/v1/orders/{order_id}", headers={**auth, "Prefer": "wait=5"}) as r:
            if r.status != 200:
                return who.fail(f"get {r.status}")
            stock = (await r.json())["stock"]
    for _ in range(20):  # a replica that showed `reserved` before the primary... cannot; still, retry 409s
        async with session.post(
            f"{base}/api/v1/orders/{order_id}/pay", json={"payment_reference": f"psp-{i}"}, headers=auth
        ) as r:
            answer = await r.json()
            if r.status == 200:
                return True
            if r.status != 409 or answer["error"]["code"] != "stock_not_reserved":
                return who.fail(f"pay {r.status}")
        await asyncio.sleep(0.02)
    return who.fail("pay: never reserved")


def cpu_ms_per_operation(cpu_percent: dict[str, float], rate: float) -> dict[str, float]:
    """CPU time per operation of each process group (% of one core at `rate` operations/s)."""
    return {name: round(percent * 10 / rate, 2) for name, percent in cpu_percent.items()} if rate else {}


def passed(result: OpenLoopResult) -> bool:
    return (
        result.p99_ms < LIMIT_MS
        and result.error_ratio <= 0.01
        and result.achieved_rate >= 0.95 * result.offered_rate
    )


async def step(
    base: str, who: Customers, rate: float, seconds: float, warmup: float, meter: CpuMeter
) -> dict[str, Any]:
    who.place_latency.clear()
    who.failures.clear()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        meter.start()
        result = await open_loop(
            rate,
            seconds,
            lambda i: place_and_pay(session, base, who, i),
            warmup=warmup,
            progress=True,
            drain_timeout=15,
        )
        cpu = meter.stop()
    placing = sorted(v for i, v in who.place_latency.items() if i >= result.first_measured)
    figures = {
        **result.to_dict(),
        "passed": passed(result),
        "place_p50_ms": quantile(placing, 0.5) * 1000,
        "place_p95_ms": quantile(placing, 0.95) * 1000,
        "place_p99_ms": quantile(placing, 0.99) * 1000,
        "failures": dict(who.failures),
        "cpu_percent_of_one_core": cpu,
        "cpu_ms_per_order": cpu_ms_per_operation(cpu, result.achieved_rate),
    }
    print(
        f"{result.line()}  place p99 {figures['place_p99_ms']:.0f} ms"
        f"  {'PASS' if figures['passed'] else 'FAIL'} {dict(who.failures) or ''}"
    )
    print("  cpu %: " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(cpu.items(), key=lambda kv: -kv[1])))
    return figures


async def search(
    base: str, who: Customers, start: float, seconds: float, warmup: float, meter: CpuMeter, bisections: int
) -> tuple[float, list[dict[str, Any]]]:
    """Doubling from `start` until a step fails, then `bisections` bisections: the highest passing rate."""
    steps: list[dict[str, Any]] = []
    good, bad = 0.0, None
    rate = start
    while bad is None:
        figures = await step(base, who, rate, seconds, warmup, meter)
        steps.append(figures)
        if figures["passed"]:
            good, rate = rate, rate * 2
        else:
            bad = rate
        await asyncio.sleep(3)  # let the backlog (Kafka, relay) drain between steps
    for _ in range(bisections):
        rate = round((good + bad) / 2, 1)
        if rate in (good, bad):
            break
        figures = await step(base, who, rate, seconds, warmup, meter)
        steps.append(figures)
        if figures["passed"]:
            good = rate
        else:
            bad = rate
        await asyncio.sleep(3)
    return good, steps


def create_product(base: str, admin: str, sku_prefix: str, name: str, description: str, stock: int) -> str:
    """A product at 10.00 EUR with `stock` units, created by `admin` through the gateway; its id."""
    product = call(
        base,
        "POST",
        "/api/v1/products",
        {
            "sku": f"{sku_prefix}-{uuid.uuid4().hex[:10]}",
            "name": name,
            "description": description,
            "price_cents": 1000,
            "currency": "EUR",
            "stock": stock,
        },
        admin,
    )
    assert product.status == 201, product
    return str(product.body["id"])


def sign_up_customers(base: str, count: int, prefix: str) -> list[str]:
    """Access tokens of `count` new, verified customers, six signing up at a time."""
    with ThreadPoolExecutor(6) as pool:
        return list(
            pool.map(
                lambda n: signed_up(base, f"{prefix}-{n}-{secrets.token_hex(5)}@example.test"),
                range(count),
            )
        )


def setup(stack: Stack, customers: int) -> Customers:
    base = stack.base
    admin = signed_up(base, f"bench-admin-{uuid.uuid4().hex[:10]}@example.test", admin=True)
    product_id = create_product(base, admin, "BENCH", "Benchmark tea", "bench/orders.py", 100_000_000)
    tokens = sign_up_customers(base, customers, "bench-customer")
    deadline = time.monotonic() + 60
    probe = {"items": [{"product_id": product_id, "quantity": 1}]}
    while True:  # the order side learns the price from product.created (price-feed agent)
        answer = call(
            base, "POST", "/api/v1/orders", probe, tokens[0], {"Idempotency-Key": f"probe-{uuid.uuid4()}"}
        )
        if answer.status == 201:
            break
        if answer.status != 422 or time.monotonic() > deadline:
            raise SystemExit(f"bench: the order side never learnt the product's price: {answer}")
        time.sleep(0.3)
    return Customers(tokens, product_id)


def at_sustained_rate(steps: list[dict[str, Any]], sustained: float) -> dict[str, Any] | None:
    """The step that set the sustained rate: the last passing one offered that rate."""
    found = [s for s in steps if s["passed"] and s["offered_rate"] == sustained]
    return found[-1] if found else None


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    db_url = os.environ.get("SHOP_ORDERS_DB_URL", "postgresql://orders:orders@127.0.0.1:5432/orders")
    catalog_url = os.environ.get("SHOP_CATALOG_DB_URL", "postgresql://catalog:catalog@127.0.0.1:5432/catalog")
    tracing = tracing_env(args.trace_ratio) if args.trace_ratio is not None else None
    log = Path(f"var/log/bench-{args.name}.log")
    results: dict[str, Any] = {
        "scenario": "orders: place (1 line) → stock reserved → pay, through the gateway, open loop",
        "latency": "place → pay answered 200, from the intended send time; placement alone as place_*",
        "criteria": {"p99_ms_below": LIMIT_MS, "errors_at_most": 0.01, "achieved_at_least": 0.95},
        "step_seconds": args.seconds,
        "warmup_seconds": args.warmup,
        "customers": args.customers,
        "otel_sdk_disabled": tracing is None,
        "tracing": tracing,
        "machine": report.machine(db_url),
    }
    with running_stack(log, tracing) as stack:
        print(f"stack up on {stack.base} ({json.dumps(stack.pids())}); setting up {args.customers} customers")
        who = setup(stack, args.customers)
        results["product_id"] = who.product_id
        print(
            f"setup done in {time.monotonic() - started:.0f} s; pgbench baseline ({args.pgbench_seconds} s)"
        )
        meter = CpuMeter(stack.pids)
        meter.start()  # pgbench is this process's child: its CPU counts in the load generator's
        baseline = pgbench_baseline(db_url, who.product_id, args.pgbench_clients, args.pgbench_seconds)
        baseline["cpu_percent_of_one_core"] = meter.stop()
        baseline["cpu_ms_per_transaction"] = cpu_ms_per_operation(
            baseline["cpu_percent_of_one_core"], baseline["tps"]
        )
        results["baseline"] = baseline
        print(
            f"pgbench: {baseline['tps']:.0f} transactions/s (avg {baseline['latency_avg_ms']} ms),"
            f" {sum(baseline['cpu_ms_per_transaction'].values()):.1f} ms of CPU each"
        )
        if args.lifecycle_seconds > 0:
            from bench.lifecycle import run_lifecycle  # it builds on this module's PGBENCH_SCRIPT

            print(f"pgbench: the order's lifecycle on both databases ({args.lifecycle_seconds} s)")
            meter.start()
            lifecycle = run_lifecycle(
                db_url, catalog_url, who.product_id, args.pgbench_clients, args.lifecycle_seconds
            )
            lifecycle["cpu_percent_of_one_core"] = meter.stop()  # sizing run included
            results["lifecycle"] = lifecycle
            print(f"pgbench: {lifecycle['tps']:.0f} lifecycles/s ({lifecycle['lifecycles']} measured)")

        async def scenario() -> tuple[float, list[dict[str, Any]], dict[str, Any] | None]:
            sustained, steps = await search(
                stack.base, who, args.start, args.seconds, args.warmup, meter, args.bisections
            )
            half = None
            if sustained > 0:
                print(f"sustained {sustained:g} orders/s; now at 50%: {sustained / 2:g}/s")
                half = await step(stack.base, who, sustained / 2, args.half_seconds, args.warmup, meter)
            return sustained, steps, half

        sustained, steps, half = asyncio.run(scenario())
    at_sustained = at_sustained_rate(steps, sustained)
    results.update(
        sustained_rate=sustained,
        steps=steps,
        at_half=half,
        ratio=round(sustained / baseline["tps"], 4) if baseline["tps"] else None,
        # What one order costs, in CPU of each process, at the sustained rate (its step).
        cpu_ms_per_order=at_sustained["cpu_ms_per_order"] if at_sustained else {},
        cpu_ms_per_order_at="the step at the sustained rate",
    )
    if "lifecycle" in results and results["lifecycle"]["tps"]:
        results["lifecycle_ratio"] = round(sustained / results["lifecycle"]["tps"], 4)
    results["target_met"] = results["ratio"] is not None and results["ratio"] >= ORDERS_RATIO_GOAL
    results["run_seconds"] = round(time.monotonic() - started)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.orders", description=__doc__)
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--start", type=float, default=10, help="first offered rate (orders/s)")
    parser.add_argument("--seconds", type=float, default=12, help="measured seconds per step")
    parser.add_argument("--warmup", type=float, default=3, help="unmeasured seconds before each step")
    parser.add_argument("--bisections", type=int, default=2)
    parser.add_argument("--half-seconds", type=float, default=15, help="measured seconds at 50%%")
    parser.add_argument("--pgbench-clients", type=int, default=4, help="per database")
    parser.add_argument("--pgbench-seconds", type=int, default=20)
    parser.add_argument(
        "--lifecycle-seconds",
        type=int,
        default=20,
        help="length of the lifecycle pgbench (bench/lifecycle.py); 0: not run",
    )
    parser.add_argument(
        "--trace-ratio",
        type=float,
        default=None,
        help="trace with the SDK on, sampling this share of traces (parentbased_traceidratio),"
        " exported to the stack's OTLP endpoint; default: the SDK off",
    )
    parser.add_argument("--name", default="orders", help="results as var/bench/NAME.json, .md, -latency.svg")
    args = parser.parse_args()
    require_pgbench()
    results = run(args)
    written = report.write(results, name=args.name)
    print(report.markdown(results))
    print(f"({results['run_seconds']} s; written: {', '.join(map(str, written))})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
