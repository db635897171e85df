"""`python -m bench.chaos [--short]` (`make chaos`, `make chaos-short`): see bench/chaos/__init__.py.

The full run takes every fault twice with 30 s of load after each; `--short` (what CI runs) takes
each once with 8 s after it. Results: a table per fault (operations started during it, errors the
clients saw, failed operations), the invariants, var/bench/chaos.json and chaos.md. Exit code 1 when
an invariant fails.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import psycopg

from bench import report
from bench.agents import group_lag
from bench.chaos import faults, invariants
from bench.chaos.stack import (
    ORDER_TTL_SECONDS,
    OWN_DELAY_QUEUES,
    TIMER_GRACE_SECONDS,
    chaos_stack,
    queue_depths,
)
from bench.chaos.workload import Customer, Operation, Workload
from bench.processes import refuse_running_relays
from bench.shoppers import create_product, priced, signed_up
from harness import progress
from harness.http import call
from harness.stack import ShopStack
from shop.settings import Settings
from shop.streams.agents import CONSUMED_TOPICS

MAILPIT = os.environ.get("SHOP_MAILPIT_URL", "http://127.0.0.1:8025")
say = partial(progress.say, "chaos")


@dataclass
class Window:
    name: str
    what: str
    started: float
    ended: float = 0.0
    happened: str = ""


@dataclass(frozen=True)
class Plan:
    rate: float  # operations started per second
    calm: float  # seconds of load before the first fault
    after: float  # seconds of load after each fault is over
    rounds: int  # how many times every fault comes
    replica_seconds: float
    customers: int
    products: int
    stock: int


SHORT = Plan(rate=5, calm=8, after=8, rounds=1, replica_seconds=8, customers=10, products=3, stock=400)
FULL = Plan(rate=8, calm=20, after=30, rounds=2, replica_seconds=30, customers=20, products=4, stock=800)


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def set_up(stack: ShopStack, plan: Plan, domain: str) -> tuple[list[Customer], list[str]]:
    admin = signed_up(stack.base, f"admin-{uuid.uuid4().hex[:8]}@{domain}", admin=True)
    products = [
        create_product(stack.base, admin, "CHAOS", f"Chaos item {n}", "bench/chaos", plan.stock)
        for n in range(plan.products)
    ]
    customers = []
    for n in range(plan.customers):
        email = f"customer-{n}-{uuid.uuid4().hex[:6]}@{domain}"
        token = signed_up(stack.base, email)
        customers.append(Customer(_claims(token)["sub"], email, token))
    deadline = time.monotonic() + 60
    token = customers[0].token
    for product in products:  # the order side learns each price from product.created
        while call(stack.base, "GET", f"/api/v1/products/{product}", token=token).status != 200:
            if time.monotonic() > deadline:  # the catalog knows it...
                raise SystemExit(f"chaos: the catalog never showed {product}")
            time.sleep(0.3)
        answer = priced(stack.base, token, product, 1, deadline)  # ...and the order side prices it
        call(stack.base, "POST", f"/api/v1/orders/{answer.json()['id']}/cancel", {}, token)
    return customers, products


async def load_until(workload: Workload, rate: float, stop: asyncio.Event) -> None:
    """Open loop: operation i starts at t0 + i/rate whatever is still outstanding, until `stop`."""
    tasks: list[asyncio.Task[bool]] = []
    started = time.monotonic()
    i = 0
    while not stop.is_set():
        due = started + i / rate
        if (wait := due - time.monotonic()) > 0:
            try:
                await asyncio.wait_for(stop.wait(), wait)
                break
            except TimeoutError:
                pass
        tasks.append(asyncio.create_task(workload.one(i)))
        i += 1
    say(
        f"load stopped after {i} operations; waiting for the {sum(not t.done() for t in tasks)} still running"
    )
    await asyncio.gather(*tasks, return_exceptions=True)


async def inject_all(stack: ShopStack, plan: Plan, windows: list[Window], stop: asyncio.Event) -> None:
    calm = Window("no fault", "the load alone", time.monotonic())
    windows.append(calm)
    await asyncio.sleep(plan.calm)
    calm.ended = time.monotonic()
    for round_ in range(plan.rounds):
        for fault in faults.every_fault(plan.replica_seconds):
            window = Window(
                fault.name + (f" (round {round_ + 1})" if plan.rounds > 1 else ""),
                fault.what,
                time.monotonic(),
            )
            windows.append(window)
            say(f"{window.name}: {fault.what}")
            window.happened = await asyncio.to_thread(fault.inject, stack)
            say(f"{window.name}: {window.happened}")
            await asyncio.sleep(plan.after)
            window.ended = time.monotonic()
    stop.set()


def settle(
    settings: Settings, since: datetime, last_order: float, timeout: float = 300
) -> tuple[float, dict[str, Any]]:
    """Until every timer of the run is due and past the grace, the outboxes are empty, and every
    queue (dead-letter queues aside) and topic has been read: (seconds it took, what was still
    waiting when it gave up, or {})."""
    started = time.monotonic()
    quiet_from = last_order + ORDER_TTL_SECONDS + TIMER_GRACE_SECONDS + 3
    while True:
        waiting: dict[str, Any] = {}
        for context, database in settings.databases.items():
            with psycopg.connect(database.primary_url, autocommit=True) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM outbox WHERE published_at IS NULL AND created_at >= %s", (since,)
                ).fetchone()
                if row and row[0]:
                    waiting[f"outbox {context}"] = int(row[0])
        for queue, depth in queue_depths().items():
            if depth and not queue.endswith(".XQ") and not _foreign_delay_queue(queue):
                waiting[f"queue {queue}"] = depth
        if lag := group_lag(settings, CONSUMED_TOPICS):
            waiting["kafka lag"] = lag
        if time.monotonic() >= quiet_from and not waiting:
            return time.monotonic() - started, {}
        if time.monotonic() - started > timeout:
            say(f"not settled after {timeout:.0f} s: {waiting}; checking anyway")
            return time.monotonic() - started, waiting
        time.sleep(1)


def _foreign_delay_queue(queue: str) -> bool:
    """A delay queue of another schedule than this run's: the orders database is the local stack's,
    so an order placed hours before with the default schedule (a benchmark's) whose first reminder a
    sweeper of this run fires sends its next reminder's trigger here, due in 8 hours. Not this run's
    to wait for."""
    return ".wait." in queue and queue not in OWN_DELAY_QUEUES


def dead_letters() -> dict[str, int]:
    return {queue: depth for queue, depth in queue_depths().items() if queue.endswith(".XQ") and depth}


def fault_rows(
    windows: list[Window], operations: list[Operation], workload: Workload
) -> list[dict[str, Any]]:
    rows = []
    for window in windows:
        inside = [op for op in operations if window.started <= op.started < window.ended]
        errors = [e for e in workload.errors if window.started <= e.at < window.ended]
        kinds: dict[str, int] = {}
        for e in errors:
            what = e.what.split(" ", 2)[-1]
            kinds[what] = kinds.get(what, 0) + 1
        rows.append(
            {
                "fault": window.name,
                "what": window.what,
                "happened": window.happened,
                "seconds": round(window.ended - window.started, 1),
                "operations": len(inside),
                "client_errors": len(errors),
                "error_kinds": dict(sorted(kinds.items(), key=lambda kv: -kv[1])[:4]),
                "failed_operations": sum(not op.ok for op in inside),
            }
        )
    return rows


def run(plan: Plan) -> dict[str, Any]:
    settings = Settings.from_env(os.environ)
    # Another stack's relay would publish this run's rows to its own vhost.
    refuse_running_relays({c: d.primary_url for c, d in settings.databases.items()}, "chaos")
    domain = f"chaos-{uuid.uuid4().hex[:8]}.test"
    since = datetime.now(UTC)
    stack = chaos_stack(Path("var/log/chaos.log"))
    say(f"starting the stack (worker pools, its own vhost); the run's addresses are @{domain}")
    try:
        stack.start()
        customers, products = set_up(stack, plan, domain)
        say(
            f"{len(customers)} customers, {len(products)} products of {plan.stock} units;"
            f" load at {plan.rate:g}/s"
        )

        async def under_load() -> tuple[Workload, list[Window]]:
            windows: list[Window] = []
            stop = asyncio.Event()
            async with Workload(stack.base, customers, products, domain) as workload:
                await asyncio.gather(
                    load_until(workload, plan.rate, stop), inject_all(stack, plan, windows, stop)
                )
            return workload, windows

        workload, windows = asyncio.run(under_load())
        operations = workload.operations
        last_order = max((op.started for op in operations if op.kind == "order"), default=time.monotonic())
        say("settling: every timer due, every outbox row sent, every queue and topic read")
        settled_in, unsettled = settle(settings, since, last_order)
        dead = dead_letters()
        users = [c.user_id for c in customers]
        checks = [
            invariants.orders_exactly_once(settings, operations, users),
            invariants.nothing_stuck(settings, users, TIMER_GRACE_SECONDS),
            invariants.stock_adds_up(settings),
            invariants.nothing_held_for_ended_orders(settings, users),
            invariants.outbox_published(settings, since),
            invariants.timers_fired(settings, users, TIMER_GRACE_SECONDS),
            *invariants.emails_delivered_once(settings, MAILPIT, domain, users),
        ]
    finally:
        stack.stop()
    outcomes: dict[str, int] = {}
    for op in operations:
        outcomes[op.outcome] = outcomes.get(op.outcome, 0) + 1
    return {
        "plan": asdict(plan),
        "domain": domain,
        "started_at": since.isoformat(),
        "faults": fault_rows(windows, operations, workload),
        "operations": len(operations),
        "operations_failed": sum(not op.ok for op in operations),
        "client_errors": len(workload.errors),
        "outcomes": dict(sorted(outcomes.items(), key=lambda kv: -kv[1])),
        "settled_in_seconds": round(settled_in, 1),
        "unsettled": unsettled,
        "dead_lettered": dead,
        "checks": [asdict(c) for c in checks],
        "passed": all(c.passed for c in checks),
    }


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "| fault | what happened | operations during it | errors clients saw (retried)"
        " | operations failed for good |",
        "|---|---|---:|---|---:|",
    ]
    for row in results["faults"]:
        kinds = ", ".join(f"{k} ×{n}" for k, n in row["error_kinds"].items())
        errors = f"{row['client_errors']}" + (f" ({kinds})" if kinds else "")
        lines.append(
            f"| {row['fault']} | {row['happened'] or row['what']} | {row['operations']} | {errors}"
            f" | {row['failed_operations']} |"
        )
    lines += ["", "| invariant | result | detail |", "|---|---|---|"]
    for check in results["checks"]:
        detail = check["detail"] + ("; " + "; ".join(check["problems"][:3]) if check["problems"] else "")
        lines.append(f"| {check['name']} | {'pass' if check['passed'] else '**FAIL**'} | {detail} |")
    outcomes = ", ".join(f"{k} {v}" for k, v in results["outcomes"].items())
    lines += [
        "",
        f"{results['operations']} operations ({outcomes}); {results['client_errors']} errors seen and"
        f" retried by clients; {results['operations_failed']} failed for good; settled"
        f" {results['settled_in_seconds']} s after the load"
        + (f" (still waiting then: {results['unsettled']})" if results["unsettled"] else "")
        + (
            f"; dead-lettered: {results['dead_lettered']}"
            if results["dead_lettered"]
            else "; nothing dead-lettered"
        )
        + ".",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    parser.add_argument("--short", action="store_true", help="each fault once, briefly (what CI runs)")
    args = parser.parse_args()
    results = run(SHORT if args.short else FULL)
    report.publish("chaos-short" if args.short else "chaos", results, markdown(results))
    return 0 if results["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
