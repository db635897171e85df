"""Issue 20's figures: the numbers `make bench` writes into var/bench/summary.json under "figures",
read from the results each scenario wrote (var/bench/<scenario>.json), and their table.

Every figure comes from this run's results; a scenario that did not run (or wrote nothing) gives
none of its figures: they are absent, never zero. The ratios are computed here from the unrounded
numbers behind them, which are written beside them.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Figures = dict[str, float | int]


def _sum(per_process: Mapping[str, float] | None) -> float | None:
    return sum(per_process.values()) if per_process else None


# Whose CPU a pgbench transaction costs: PostgreSQL's and pgbench's (a child of the load generator,
# which does nothing else meanwhile). The shop's stack is up and idle during the baseline: its
# background CPU and its relay waking on each of pgbench's NOTIFYs (to find nothing: the scratch
# outbox is not its) are not the transaction's, and are left out.
BASELINE_PROCESSES = ("postgresql (primary + replica)", "bench (load generator)")


def pgbench_cpu_ms(per_process: Mapping[str, float] | None) -> float | None:
    """CPU per pgbench transaction: PostgreSQL's and pgbench's (of older results without those
    groups, every process's)."""
    if not per_process:
        return None
    if not any(name in per_process for name in BASELINE_PROCESSES):
        return _sum(per_process)
    return sum(per_process.get(name, 0.0) for name in BASELINE_PROCESSES)


def _orders(r: Mapping[str, Any]) -> dict[str, float]:
    """(name → value) of one orders scenario: its rate, its placement baseline, CPU per order."""
    found: dict[str, float] = {}
    per_s = r.get("sustained_rate")
    base = r.get("baseline") or {}
    tps = base.get("tps")
    if per_s is not None:
        found["per_s"] = float(per_s)
    if tps:
        found["pgbench_tps"] = float(tps)
        if per_s is not None:
            found["ratio"] = float(per_s) / float(tps)
    order_ms = _sum(r.get("cpu_ms_per_order"))
    transaction_ms = pgbench_cpu_ms(base.get("cpu_ms_per_transaction"))
    if order_ms:
        found["cpu_ms"] = order_ms
    if transaction_ms:
        found["pgbench_cpu_ms"] = transaction_ms
        if order_ms:
            found["cpu_ratio"] = order_ms / transaction_ms
    lifecycle_tps = (r.get("lifecycle") or {}).get("tps")
    if lifecycle_tps:
        found["lifecycle_tps"] = float(lifecycle_tps)
        if per_s is not None:
            found["lifecycle_ratio"] = float(per_s) / float(lifecycle_tps)
    return found


def orders_figures(r: Mapping[str, Any]) -> Figures:
    kept = ("per_s", "pgbench_tps", "ratio", "cpu_ms", "pgbench_cpu_ms", "cpu_ratio", "lifecycle_ratio")
    return _named(_orders(r), {**{k: f"orders_{k}" for k in kept}, "lifecycle_tps": "lifecycle_pgbench_tps"})


def orders_traced_figures(r: Mapping[str, Any]) -> Figures:
    """The orders scenario with tracing on: its rate and CPU against its own run's placement baseline."""
    kept = ("per_s", "ratio", "cpu_ms", "cpu_ratio")
    return _named(_orders(r), {k: f"orders_traced_{k}" for k in kept})


def _named(found: Mapping[str, float], names: Mapping[str, str]) -> Figures:
    """The figures of `found` that `names` names, under those names, rounded."""
    return {names[k]: _round(names[k], v) for k, v in found.items() if k in names}


def inventory_figures(r: Mapping[str, Any]) -> Figures:
    found: Figures = {}
    per_s = (r.get("burst") or {}).get("reservations_per_s")
    tps = (r.get("baseline") or {}).get("tps")
    if per_s is not None:
        found["inventory_per_s"] = _round("inventory_per_s", float(per_s))
    if tps:
        found["inventory_pgbench_tps"] = _round("inventory_pgbench_tps", float(tps))
        if per_s is not None:
            found["inventory_ratio"] = _round("inventory_ratio", float(per_s) / float(tps))
    return found


def flash_sale_figures(r: Mapping[str, Any]) -> Figures:
    res = r.get("result") or {}
    found: Figures = {}
    # Only when every order was placed and settled: the time "until all settled" is then that.
    everyone = res.get("unsettled") == 0 and res.get("placed") == res.get("orders")
    if everyone and res.get("settle_all_seconds") is not None:
        found["flash_sale_settled_s"] = round(float(res["settle_all_seconds"]), 3)
    if res.get("orders") is not None:
        found["flash_sale_buyers"] = int(res["orders"])
    if res.get("oversold") is not None:
        found["flash_sale_oversold"] = int(res["oversold"])
    return found


def timers_figures(r: Mapping[str, Any]) -> Figures:
    found: Figures = {}
    if r.get("lateness_p99_ms") is not None:
        found["expiry_late_p99_s"] = round(float(r["lateness_p99_ms"]) / 1000, 3)
    if r.get("due_per_second") is not None:
        found["expiries_per_s"] = int(r["due_per_second"])
    return found


def _round(name: str, value: float) -> float:
    """Ratios to 4 decimals, rates and milliseconds to 3 significant decimals' worth."""
    return round(value, 4 if "ratio" in name else 3)


# Which scenario's results give which figures (the runner's scenario names).
EXTRACTORS: dict[str, Callable[[Mapping[str, Any]], Figures]] = {
    "orders": orders_figures,
    "orders-traced": orders_traced_figures,
    "inventory": inventory_figures,
    "flash-sale": flash_sale_figures,
    "timers": timers_figures,
}


def figures(results: Mapping[str, Mapping[str, Any]]) -> Figures:
    """Every figure the given scenarios' results hold ({scenario name: its JSON})."""
    found: Figures = {}
    for scenario, extract in EXTRACTORS.items():
        if scenario in results:
            found.update(extract(results[scenario]))
    return found


# --- goals and the table ------------------------------------------------------------------------


@dataclass(frozen=True)
class Goal:
    figure: str
    compare: Callable[[float, float], bool]
    bound: float
    text: str


GOALS = (
    Goal("orders_cpu_ratio", operator.le, 8, "≤ 8"),
    Goal("orders_ratio", operator.ge, 0.12, "≥ 0.12"),
    Goal("orders_lifecycle_ratio", operator.ge, 0.5, "≥ 0.5"),
    Goal("inventory_ratio", operator.ge, 0.5, "≥ 0.5"),
    Goal("flash_sale_settled_s", operator.le, 5, "≤ 5 s"),
    Goal("flash_sale_oversold", operator.eq, 0, "0"),
    Goal("expiry_late_p99_s", operator.le, 2, "≤ 2 s"),
)


def verdicts(found: Mapping[str, float | int]) -> dict[str, bool]:
    """Each goal whose figure was measured: met or not."""
    return {g.figure: g.compare(found[g.figure], g.bound) for g in GOALS if g.figure in found}


def _goal(found: Mapping[str, float | int], figure: str) -> str:
    for g in GOALS:
        if g.figure == figure and figure in found:
            return f"{g.text}: {'met' if g.compare(found[figure], g.bound) else '**not met**'}"
    return ""


def markdown(found: Mapping[str, float | int]) -> str:
    """The figures beside their baselines and ratios; rows of what was not measured are left out."""
    rows: list[tuple[str, str, str, str, str]] = []
    f = found
    if "orders_ratio" in f:
        rows.append(
            (
                "`orders_ratio`: sustained orders/s (p99 place → pay < 250 ms)",
                f"`orders_per_s` {f['orders_per_s']:g}",
                f"`orders_pgbench_tps` {f['orders_pgbench_tps']:,.0f} (pgbench, the placement)",
                f"{f['orders_ratio']:.4f}",
                _goal(f, "orders_ratio"),
            )
        )
    if "orders_cpu_ratio" in f:
        rows.append(
            (
                "`orders_cpu_ratio`: CPU per order, every process, at the sustained rate",
                f"`orders_cpu_ms` {f['orders_cpu_ms']:.2f} ms",
                f"`orders_pgbench_cpu_ms` {f['orders_pgbench_cpu_ms']:.3f} ms per placement transaction",
                f"{f['orders_cpu_ratio']:.1f}",
                _goal(f, "orders_cpu_ratio"),
            )
        )
    if "orders_lifecycle_ratio" in f:
        rows.append(
            (
                "`orders_lifecycle_ratio`: sustained orders/s against the lifecycle's SQL",
                f"`orders_per_s` {f['orders_per_s']:g}",
                f"`lifecycle_pgbench_tps` {f['lifecycle_pgbench_tps']:,.1f} (pgbench, placement to paid)",
                f"{f['orders_lifecycle_ratio']:.4f}",
                _goal(f, "orders_lifecycle_ratio"),
            )
        )
    if "inventory_ratio" in f:
        rows.append(
            (
                "`inventory_ratio`: reservations/s by the agents (streams alone)",
                f"`inventory_per_s` {f['inventory_per_s']:,.1f}",
                f"`inventory_pgbench_tps` {f['inventory_pgbench_tps']:,.0f} (pgbench, the reservation)",
                f"{f['inventory_ratio']:.4f}",
                _goal(f, "inventory_ratio"),
            )
        )
    if "flash_sale_buyers" in f:
        settled = f.get("flash_sale_settled_s")
        rows.append(
            (
                f"`flash_sale_settled_s`: `flash_sale_buyers` {f['flash_sale_buyers']:,}"
                " one-unit orders at once",
                f"{settled:g} s to settle all" if settled is not None else "not all settled",
                "",
                "",
                _goal(f, "flash_sale_settled_s"),
            )
        )
        if "flash_sale_oversold" in f:
            rows.append(
                (
                    "`flash_sale_oversold`",
                    f"{f['flash_sale_oversold']}",
                    "",
                    "",
                    _goal(f, "flash_sale_oversold"),
                )
            )
    if "expiry_late_p99_s" in f:
        rows.append(
            (
                f"`expiry_late_p99_s`: `expiries_per_s` {f.get('expiries_per_s', 0):,} due per second",
                f"p99 {f['expiry_late_p99_s']:g} s late",
                "",
                "",
                _goal(f, "expiry_late_p99_s"),
            )
        )
    if "orders_traced_ratio" in f:
        rows.append(
            (
                "`orders_traced_ratio`: sustained orders/s, tracing on (10 % sampled, exported)",
                f"`orders_traced_per_s` {f['orders_traced_per_s']:g}",
                "pgbench, the placement (its run)",
                f"{f['orders_traced_ratio']:.4f}",
                "",
            )
        )
    if "orders_traced_cpu_ratio" in f:
        rows.append(
            (
                "`orders_traced_cpu_ratio`: CPU per order, tracing on",
                f"`orders_traced_cpu_ms` {f['orders_traced_cpu_ms']:.2f} ms",
                "pgbench, the placement (its run)",
                f"{f['orders_traced_cpu_ratio']:.1f}",
                "",
            )
        )
    if not rows:
        return ""
    lines = [
        "| figure | measured | baseline (same run) | ratio | goal (issue 20) |",
        "|---|---|---|---|---|",
        *(f"| {' | '.join(row)} |" for row in rows),
    ]
    return "\n".join(lines) + "\n"
