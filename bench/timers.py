"""`python -m bench.timers`: order timers at volume. Not a test: it prints figures for docs/benchmarks.md.

1. Pending: N orders (default 100,000) with four timers each (4 h, 12 h, 22 h, 24 h), written the
   way placement writes them (orders, order_timers, and the triggers of the first reminder and of
   the expiry in the outbox: each reminder sends the next one's when it fires), then published by
   a real relay into the delay queues. Reports the relay's rate, RabbitMQ's memory per pending
   trigger, and the timer workers' resident memory before and after (it must stay flat: the
   triggers wait in RabbitMQ, not in a worker).
2. Due: R orders per second (default 1,000) for S seconds, each with an expiry D seconds later, so
   that R expiries fall due every second. Reports how late they fire (p50/p99/max) and by whom.

It runs its own relay and timer workers against the local stack (`make up`), on a RabbitMQ vhost of
its own, with the sweeper's grace set to an hour so that only the delay queues fire timers. Every
order it made is deleted at the end and the vhost with it. Results also go to var/bench/timers.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psycopg

from bench import report
from bench.processes import shop_process
from harness.rabbitmq import create_vhost, delete_vhost, management, vhost_url
from shop.settings import Settings

BENCH_USER = uuid.UUID("00000000-0000-4000-8000-00000000b7e5")  # every order of this benchmark
VHOST = "shop-bench-timers"
PENDING_DELAYS_MS = {"reminder_1": 4 * 3600_000, "reminder_2": 12 * 3600_000, "reminder_3": 22 * 3600_000}
TTL_MS = 24 * 3600_000
TRIGGERS_PER_ORDER = 2  # the first reminder's and the expiry's (shop/handlers/orders.py schedule_timers)

# One statement per chunk: orders, their timers and their triggers (of the kinds in %(triggers)s: the
# first reminder and the expiry), as handle_place_order writes them.
# The orders are PAID, so their expiries complete them: the same work as a cancellation (the timer and
# its order locked by one join, shop/db/timers.py lock_timer_and_order or claim_due; the order written
# by update_order; an event; the timer marked; one transaction), but the event is order.completed,
# which no agent consumes, so the benchmark leaves no backlog of order.cancelled for the inventory agent.
_INSERT_ORDERS = """
WITH new_orders AS (
    INSERT INTO orders (id, user_id, status, stock, paid_at, payment_reference, total_cents, currency,
                        created_at, updated_at, expires_at)
    SELECT gen_random_uuid(), %(user)s, 'PAID', 'reserved', now(), 'bench', 1000, 'EUR',
           now(), now(), now() + %(ttl_ms)s * interval '1 ms'
      FROM generate_series(1, %(count)s)
    RETURNING id, created_at
), timers AS (
    SELECT o.id, o.created_at, t.kind, t.delay::bigint AS delay_ms
      FROM new_orders o CROSS JOIN jsonb_each_text(%(delays)s::jsonb) AS t(kind, delay)
), recorded AS (
    INSERT INTO order_timers (order_id, kind, due_at)
    SELECT id, kind, created_at + delay_ms * interval '1 ms' FROM timers
)
INSERT INTO outbox (event_id, destination, topic, message_key, payload, headers)
SELECT gen_random_uuid(), 'rabbitmq', 'timers', NULL,
       jsonb_build_object(
           'actor_name', CASE kind WHEN 'expiry' THEN 'expire_order' ELSE 'send_payment_reminder' END,
           'args', '[]'::jsonb,
           'kwargs', jsonb_build_object('order_id', id::text, 'kind', kind),
           'delay_ms', delay_ms),
       '{}'::jsonb
  FROM timers
 WHERE kind = ANY(%(triggers)s)
"""


class Rabbit:
    def __init__(self, env: dict[str, str]) -> None:
        self._env = env

    def create_vhost(self) -> None:
        create_vhost(VHOST, self._env)

    def delete_vhost(self) -> None:
        delete_vhost(VHOST, self._env)

    def memory_mib(self) -> float:
        (node,) = management("GET", "/api/nodes", None, self._env)
        return float(node["mem_used"]) / 2**20

    def delay_queue_memory(self) -> tuple[int, int]:
        """(bytes, messages) of this vhost's delay queues, as their queue processes report them."""
        queues = management("GET", f"/api/queues/{VHOST}?columns=name,messages,memory", None, self._env)
        delay = [q for q in queues if q["name"].startswith("timers.wait.")]
        return sum(q.get("memory") or 0 for q in delay), sum(q.get("messages") or 0 for q in delay)

    def waiting(self) -> int:
        """Messages in this vhost's delay queues (management stats lag a few seconds)."""
        queues = management("GET", f"/api/queues/{VHOST}?columns=name,messages", None, self._env)
        return sum(q.get("messages") or 0 for q in queues if q["name"].startswith("timers.wait."))


def _insert(conn: psycopg.Connection[Any], count: int, delays: dict[str, int], ttl_ms: int) -> None:
    """`count` orders with a timer of each kind in `delays`; triggers for the first and the expiry."""
    triggers = [min(delays, key=lambda kind: delays[kind]), "expiry"]
    with conn.transaction():
        conn.execute(
            _INSERT_ORDERS,
            {
                "user": BENCH_USER,
                "count": count,
                "ttl_ms": ttl_ms,
                "delays": json.dumps(delays),
                "triggers": triggers,
            },
        )
    conn.execute("NOTIFY outbox")  # as the unit of work does after its commit: wakes the relay


def _wait(what: str, done: Callable[[], bool], timeout: float, every: float = 1.0) -> float:
    started = time.monotonic()
    while not done():
        if time.monotonic() - started > timeout:
            raise SystemExit(f"bench: {what} did not finish within {timeout:.0f} s")
        time.sleep(every)
    return time.monotonic() - started


def run(
    orders: int, rate: int, seconds: int, expiry_delay: float, threads: int, workers: int
) -> dict[str, Any]:
    settings = Settings.from_env(os.environ)
    env = dict(os.environ)
    rabbit = Rabbit(env)
    rabbit.create_vhost()
    log = Path("var/log/bench-timers.log")
    log.parent.mkdir(parents=True, exist_ok=True)
    child_env = {
        "SHOP_RABBITMQ_URL": vhost_url(settings.rabbitmq_url, VHOST),
        "SHOP_TIMER_GRACE": "1h",  # only the delay queues fire timers here
        "SHOP_LOG_LEVEL": "WARNING",
    }
    triggers = orders * TRIGGERS_PER_ORDER
    results: dict[str, Any] = {
        "orders": orders,
        "timers": orders * 4,
        "triggers": triggers,
        "rate": rate,
        "seconds": seconds,
    }
    db_url = settings.databases["orders"].primary_url
    try:
        with ExitStack() as stack, psycopg.connect(db_url, autocommit=True) as conn:
            stack.enter_context(shop_process("relay", child_env, log=log))
            pool = [
                stack.enter_context(
                    shop_process("workers", child_env, ["--queues", "timers", "--threads", str(threads)], log)
                )
                for _ in range(workers)
            ]
            time.sleep(3)
            results["workers_rss_idle_mib"] = round(sum(w.rss_mib() for w in pool), 1)
            rabbit_before = rabbit.memory_mib()
            print(f"workers idle: {results['workers_rss_idle_mib']} MiB; RabbitMQ {rabbit_before:.0f} MiB")

            # 1. Pending timers.
            started = time.monotonic()
            delays = {**PENDING_DELAYS_MS, "expiry": TTL_MS}
            for chunk in range(0, orders, 10_000):
                _insert(conn, min(10_000, orders - chunk), delays, TTL_MS)
            results["insert_seconds"] = round(time.monotonic() - started, 1)
            published = _wait(
                "publishing the pending triggers", lambda: rabbit.waiting() >= triggers, timeout=1800
            )
            results["relay_messages_per_second"] = round(triggers / (time.monotonic() - started))
            time.sleep(10)  # let RabbitMQ settle (memory is sampled every few seconds)
            rabbit_after = rabbit.memory_mib()
            results["rabbitmq_mib_before"] = round(rabbit_before)
            results["rabbitmq_mib_after"] = round(rabbit_after)
            results["rabbitmq_bytes_per_pending_timer"] = round(
                (rabbit_after - rabbit_before) * 2**20 / triggers
            )
            queue_bytes, queue_messages = rabbit.delay_queue_memory()
            results["delay_queue_bytes_per_pending_timer"] = round(queue_bytes / max(1, queue_messages))
            results["workers_rss_pending_mib"] = round(sum(w.rss_mib() for w in pool), 1)
            print(
                f"{triggers:,} triggers pending after {published:.0f} s;"
                f" RabbitMQ {rabbit_after:.0f} MiB; workers {results['workers_rss_pending_mib']} MiB"
            )

            # 2. Expiries falling due at `rate` per second.
            delay_ms = round(expiry_delay * 1000)
            # In slices of 50 ms, as placements spread over each second (not all due at one instant).
            slices = 20
            started = time.monotonic()
            for n in range(seconds * slices):
                _insert(conn, rate // slices, {"expiry": delay_ms}, delay_ms)
                if n % (5 * slices) == 0:
                    print(f"placing {rate}/s: {n // slices + 1}/{seconds} s", flush=True)
                time.sleep(max(0.0, started + (n + 1) / slices - time.monotonic()))
            due_total = rate // slices * slices * seconds

            def fired() -> bool:
                row = conn.execute(
                    "SELECT count(*) FROM order_timers t JOIN orders o ON o.id = t.order_id"
                    " WHERE o.user_id = %s AND t.kind = 'expiry' AND t.fired_at IS NOT NULL"
                    " AND t.due_at < o.created_at + interval '1 hour'",
                    (BENCH_USER,),
                ).fetchone()
                return bool(row and row[0] >= due_total)

            _wait("firing the expiries", fired, timeout=max(600.0, expiry_delay + seconds * 4))
            row = conn.execute(
                """
                SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY lateness),
                       percentile_cont(0.99) WITHIN GROUP (ORDER BY lateness),
                       max(lateness),
                       count(*) FILTER (WHERE fired_by = 'trigger'),
                       count(*) FILTER (WHERE outcome = 'completed'),
                       min(due_at), max(due_at)
                  FROM (SELECT extract(epoch FROM t.fired_at - t.due_at) AS lateness, t.fired_by, t.outcome,
                               t.due_at
                          FROM order_timers t JOIN orders o ON o.id = t.order_id
                         WHERE o.user_id = %s AND t.kind = 'expiry'
                           AND t.due_at < o.created_at + interval '1 hour') fired
                """,
                (BENCH_USER,),
            ).fetchone()
            assert row is not None
            p50, p99, worst, by_trigger, completed, first, last = row
            results.update(
                expiries=due_total,
                due_per_second=round(due_total / max(1.0, (last - first).total_seconds())),
                lateness_p50_ms=round(p50 * 1000),
                lateness_p99_ms=round(p99 * 1000),
                lateness_max_ms=round(worst * 1000),
                fired_by_trigger=by_trigger,
                completed=completed,
                workers_rss_after_mib=round(sum(w.rss_mib() for w in pool), 1),
            )
    finally:
        print("cleaning up: deleting the benchmark's orders and its vhost")
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("DELETE FROM orders WHERE user_id = %s", (BENCH_USER,))
        rabbit.delete_vhost()
    return results


def markdown(results: dict[str, Any]) -> str:
    rows = [
        ("pending timers (4 per order; 2 triggers per order wait)", f"{results['timers']:,}"),
        ("relay into the delay queues", f"{results['relay_messages_per_second']:,} messages/s"),
        (
            "RabbitMQ memory",
            f"{results['rabbitmq_mib_before']} → {results['rabbitmq_mib_after']} MiB"
            f" ({results['rabbitmq_bytes_per_pending_timer']:,} bytes per pending trigger; the delay"
            f" queues' own processes: {results['delay_queue_bytes_per_pending_timer']} bytes)",
        ),
        (
            f"timer workers' RSS: idle / {results.get('triggers', 0):,} triggers pending / after expiries",
            f"{results['workers_rss_idle_mib']} / {results['workers_rss_pending_mib']}"
            f" / {results['workers_rss_after_mib']} MiB",
        ),
        (
            f"expiries due at {results['due_per_second']:,}/s for {results['seconds']} s",
            f"p50 {results['lateness_p50_ms']} ms, p99 {results['lateness_p99_ms']} ms,"
            f" max {results['lateness_max_ms']} ms late",
        ),
        (
            "fired by their trigger (not the sweeper)",
            f"{results['fired_by_trigger']:,} of {results['expiries']:,}",
        ),
    ]
    return "\n".join(["| timers | measured |", "|---|---|", *(f"| {a} | {b} |" for a, b in rows)])


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.timers", description=__doc__)
    parser.add_argument("--orders", type=int, default=100_000, help="orders with four pending timers each")
    parser.add_argument("--rate", type=int, default=1_000, help="expiries falling due per second")
    parser.add_argument("--seconds", type=int, default=30, help="for how long they fall due at that rate")
    parser.add_argument("--expiry-delay", type=float, default=40.0, help="seconds from placement to expiry")
    parser.add_argument("--threads", type=int, default=8, help="threads per timer worker process")
    parser.add_argument("--workers", type=int, default=2, help="timer worker processes (one per core)")
    args = parser.parse_args()
    results = run(args.orders, args.rate, args.seconds, args.expiry_delay, args.threads, args.workers)
    (written,) = report.save("timers", results, None)
    print(markdown(results))
    print(f"(also in {written})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
