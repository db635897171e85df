"""`python -m bench [SCENARIO ...]` (`make bench`, `make bench SCENARIO="orders relay"`): the benchmark
scenarios in one run, each next to a baseline measured in the same run, then one summary table.

Each scenario runs as its own `python -m bench.<module>` (a fresh interpreter; its own processes
of the shop against the local stack, which `make bench` starts) with the sizes below, chosen so that
the whole suite takes under 15 minutes on the project's 2-core machine; each module's `--help` tells
how to run it bigger. Every scenario writes var/bench/<name>.json and .md; this runner adds
var/bench/summary.md and summary.json. A scenario that fails is reported and the others still run;
the exit code is then 1.

Tracing is off in every scenario (OTEL_SDK_DISABLED=true) but `orders-traced`, which is the orders
scenario with the SDK on, 10 % of traces sampled and exported to the stack's Jaeger; it runs only
when named (`make bench SCENARIO=orders-traced`), being outside the 15-minute set.

Issue 20's figures (bench/figures.py) go into summary.json under "figures", and their table (each
beside its baseline and ratio) heads summary.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bench import figures, report

Row = tuple[str, str, str, str, str]  # scenario, measured, baseline, ratio, target and verdict


@dataclass(frozen=True)
class Scenario:
    module: str
    args: tuple[str, ...]  # the suite's sizes
    output: str  # the JSON file the module writes under var/bench
    summarize: Callable[[dict[str, Any]], list[Row]]
    what: str
    env: tuple[tuple[str, str], ...] = ()  # over the runner's environment
    optional: bool = False  # run only when named


def _percent(ratio: float) -> str:
    return f"{ratio * 100:.1f}%"


def _verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def gateway_rows(r: dict[str, Any]) -> list[Row]:
    phases = {p["connections"]: p for p in r["phases"]}
    rows: list[Row] = []
    if 1 in phases:
        best = phases[1]["best"]
        added = phases[1]["middlewares_added_p50_ms"]
        rows.append(
            (
                "gateway, 1 connection: what the middlewares add at p50",
                f"+{added:.2f} ms ({best['bare']['p50_ms']:.2f} → {best['gateway']['p50_ms']:.2f} ms)",
                f"HAProxy in front of the same handler: +{phases[1]['haproxy_added_p50_ms']:.2f} ms",
                "",
                f"≤ 1.5 ms: {_verdict(added <= 1.5)}",
            )
        )
    if 16 in phases:
        best = phases[16]["best"]
        rows.append(
            (
                "gateway, 16 connections",
                f"{best['gateway']['rate']:,.0f} req/s",
                f"HAProxy → bare handler {best['haproxy']['rate']:,.0f} req/s;"
                f" bare {best['bare']['rate']:,.0f} req/s",
                f"{phases[16]['gateway_over_haproxy_rate']:.2f}× HAProxy",
                "",
            )
        )
    return rows


def orders_rows(r: dict[str, Any]) -> list[Row]:
    base = r["baseline"]
    tracing = r.get("tracing")
    name = f"orders, traced ({tracing['OTEL_TRACES_SAMPLER_ARG']} of traces)" if tracing else "orders"
    rows: list[Row] = [
        (
            f"{name}: place → reserved → pay through the gateway, highest rate with p99 < 250 ms",
            f"{r['sustained_rate']:g} orders/s",
            f"pgbench, placement's SQL: {base['tps']:,.0f} tps",
            _percent(r["ratio"]),
            "" if tracing else f"≥ 12%: {_verdict(r['target_met'])}",
        )
    ]
    lifecycle = r.get("lifecycle")
    if lifecycle and r.get("lifecycle_ratio") is not None:
        rows.append(
            (
                f"{name}: the same rate against the SQL of an order's whole lifecycle (placement to paid)",
                f"{r['sustained_rate']:g} orders/s",
                f"pgbench, both databases at once: {lifecycle['tps']:,.1f} lifecycles/s",
                _percent(r["lifecycle_ratio"]),
                f"≥ 50%: {_verdict(r['lifecycle_ratio'] >= 0.5)}",
            )
        )
    per_order, per_transaction = r.get("cpu_ms_per_order") or {}, base.get("cpu_ms_per_transaction") or {}
    if per_order and figures.pgbench_cpu_ms(per_transaction):
        order_ms, transaction_ms = sum(per_order.values()), figures.pgbench_cpu_ms(per_transaction) or 0.0
        top = sorted(per_order.items(), key=lambda kv: -kv[1])[:3]
        rows.append(
            (
                f"{name}: CPU per order at the sustained rate, every process on the machine",
                f"{order_ms:.1f} ms ({', '.join(f'{k} {v:.1f}' for k, v in top)}, ...)",
                f"pgbench: {transaction_ms:.2f} ms per transaction (PostgreSQL and pgbench)",
                f"{order_ms / transaction_ms:.1f}×",
                "" if tracing else f"≤ 8×: {_verdict(order_ms / transaction_ms <= 8)}",
            )
        )
    half = r.get("at_half")
    if half:
        rows.append(
            (
                f"{name} at 50% ({half['offered_rate']:g}/s): p50 / p95 / p99",
                f"{half['p50_ms']:.0f} / {half['p95_ms']:.0f} / {half['p99_ms']:.0f} ms",
                f"placement alone p99 {half['place_p99_ms']:.0f} ms",
                "",
                "",
            )
        )
    return rows


def inventory_rows(r: dict[str, Any]) -> list[Row]:
    burst, steady, base = r["burst"], r["steady"], r["baseline"]
    return [
        (
            f"inventory: {burst['events']:,} order.created at once, reservations by the agent",
            f"{burst['reservations_per_s']:,.0f} reservations/s",
            f"pgbench, the reservation's SQL: {base['tps']:,.0f} tps",
            _percent(r["ratio"]),
            f"≥ 50%: {_verdict(r['target_met'])}",
        ),
        (
            f"inventory at {steady['offered_rate']:g} events/s: lag p99 / max; sent → reserved p99",
            f"{steady['lag_p99']} / {steady['lag_max']} events; {steady['latency_p99_ms']:.0f} ms",
            "",
            "",
            "",
        ),
    ]


def relay_rows(r: dict[str, Any]) -> list[Row]:
    kafka, rabbit = r["kafka"], r["rabbitmq"]
    return [
        (
            f"relay: {kafka['relay']['rows']:,} outbox rows → Kafka",
            f"{kafka['relay']['rows_per_second']:,.0f} rows/s",
            f"Kafka ProducerPerformance: {kafka['baseline']['rows_per_second']:,.0f} records/s",
            _percent(kafka["ratio"]),
            "",
        ),
        (
            f"relay: {rabbit['relay']['rows']:,} outbox rows → RabbitMQ",
            f"{rabbit['relay']['rows_per_second']:,.0f} rows/s",
            f"pika, a confirm per message: {rabbit['baseline']['rows_per_second']:,.0f} messages/s",
            f"{rabbit['ratio']:.1f}×",
            "",
        ),
    ]


def flash_sale_rows(r: dict[str, Any]) -> list[Row]:
    res = r["result"]
    return [
        (
            f"flash sale: {res['orders']} one-unit orders at once for {r['stock']} units",
            f"all settled in {res['settle_all_seconds']:.1f} s; {res['reserved']} reserved,"
            f" {res['cancelled_out_of_stock']} out_of_stock",
            "",
            "",
            f"oversold 0: {_verdict(res['oversold'] == 0 and res['passed'])} (oversold {res['oversold']})",
        )
    ]


def timers_rows(r: dict[str, Any]) -> list[Row]:
    return [
        (
            f"timers: {r.get('triggers', r['timers']):,} triggers into the delay queues",
            f"{r['relay_messages_per_second']:,} messages/s",
            "",
            "",
            "",
        ),
        (
            f"timers: {r['due_per_second']:,} expiries due per second for {r['seconds']} s",
            f"p50 {r['lateness_p50_ms'] / 1000:g} s, p99 {r['lateness_p99_ms'] / 1000:g} s late;"
            f" {r['fired_by_trigger']:,} of {r['expiries']:,} fired by their trigger",
            "",
            "",
            f"p99 ≤ 2 s: {_verdict(r['lateness_p99_ms'] <= 2000)}",
        ),
    ]


SCENARIOS: dict[str, Scenario] = {
    "gateway": Scenario(
        "bench.overhead", ("--seconds", "3"), "overhead.json", gateway_rows, "middlewares vs bare vs HAProxy"
    ),
    "orders": Scenario(
        "bench.orders", (), "orders.json", orders_rows, "place and pay, open loop; the lifecycle's pgbench"
    ),
    "inventory": Scenario("bench.inventory", (), "inventory.json", inventory_rows, "the inventory agent"),
    "relay": Scenario("bench.relay", (), "relay.json", relay_rows, "outbox → Kafka and RabbitMQ"),
    "flash-sale": Scenario(
        "bench.flash_sale",
        ("--stock", "100", "--customers", "200", "--orders-each", "5"),
        "flash-sale.json",
        flash_sale_rows,
        "1,000 buyers at once for 100 units: never oversell",
    ),
    "timers": Scenario(
        "bench.timers",
        ("--orders", "20000", "--rate", "1000", "--seconds", "30"),
        "timers.json",
        timers_rows,
        "pending timers; 1,000 expiries due per second for 30 s",
    ),
    "orders-traced": Scenario(
        "bench.orders",
        ("--trace-ratio", "0.1", "--lifecycle-seconds", "0", "--name", "orders-traced"),
        "orders-traced.json",
        orders_rows,
        "the orders scenario with tracing on, 10 % sampled and exported to Jaeger",
        env=(("OTEL_SDK_DISABLED", "false"),),
        optional=True,
    ),
}


def summary_markdown(
    rows: list[Row], runs: list[dict[str, Any]], machine: dict[str, Any], found: figures.Figures | None = None
) -> str:
    table = figures.markdown(found or {})
    lines = [
        *([table] if table else []),
        "| scenario | measured | baseline (same run) | ratio | target |",
        "|---|---|---|---|---|",
        *(f"| {' | '.join(row)} |" for row in rows),
        "",
        f"Machine: {machine.get('cores')} cores, {machine.get('memory_gib')} GiB,"
        f" Python {machine.get('python')}, PostgreSQL {machine.get('postgresql')}. Run times: "
        + ", ".join(
            f"{run['scenario']} {run['seconds']:.0f} s" + ("" if run["ok"] else " (FAILED)") for run in runs
        )
        + f"; in all {sum(run['seconds'] for run in runs) / 60:.1f} min.",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO", help=f"any of: {', '.join(SCENARIOS)}")
    args = parser.parse_args()
    chosen = args.scenarios or [name for name, scenario in SCENARIOS.items() if not scenario.optional]
    unknown = [name for name in chosen if name not in SCENARIOS]
    if unknown:
        parser.error(f"no scenario {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    env = {**os.environ, "OTEL_SDK_DISABLED": "true"}
    runs: list[dict[str, Any]] = []
    rows: list[Row] = []
    results: dict[str, dict[str, Any]] = {}
    for n, name in enumerate(chosen, 1):
        scenario = SCENARIOS[name]
        print(f"\n=== [{n}/{len(chosen)}] {name}: {scenario.what} ===", flush=True)
        output = report.OUT_DIR / scenario.output
        output.unlink(missing_ok=True)  # a figure in the summary is from this run or absent
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", scenario.module, *scenario.args],
            env={**env, **dict(scenario.env)},
            check=False,
        )
        seconds = time.monotonic() - started
        ok = done.returncode == 0 and output.exists()
        runs.append({"scenario": name, "seconds": round(seconds, 1), "ok": ok, "exit_code": done.returncode})
        if output.exists():  # a failed scenario's results still count (an oversold flash sale)
            results[name] = json.loads(output.read_text())
            rows += scenario.summarize(results[name])
        if not ok:
            rows.append((name, f"**failed** (exit code {done.returncode})", "", "", ""))
        print(f"=== {name}: {'done' if ok else 'FAILED'} in {seconds:.0f} s ===", flush=True)
    machine = report.machine(os.environ.get("SHOP_ORDERS_DB_URL"))
    found = figures.figures(results)
    text = summary_markdown(rows, runs, machine, found)
    summary = {
        "finished_at": datetime.now(UTC).isoformat(),
        "machine": machine,
        "runs": runs,
        "figures": found,
        "goals_met": figures.verdicts(found),
        "rows": rows,
    }
    written = report.save("summary", summary, text)
    print("\n" + text)
    print(f"(written: {', '.join(map(str, written))}; each scenario's own files beside them)")
    return 0 if all(run["ok"] for run in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
