"""Issue 20's figures, read from the scenarios' results: their names, their ratios, and absent (never
zero) when their scenario did not run."""

from __future__ import annotations

from typing import Any

import pytest

from bench.figures import figures, markdown, verdicts


def orders_result(**changes: Any) -> dict[str, Any]:
    result: dict[str, Any] = {
        "sustained_rate": 40.0,
        "baseline": {
            "tps": 1160.0,
            "cpu_ms_per_transaction": {
                "postgresql (primary + replica)": 0.75,
                "bench (load generator)": 0.25,
            },
        },
        "cpu_ms_per_order": {"postgresql (primary + replica)": 7.5, "gateway": 7.5, "kafka": 1.0},
        "lifecycle": {"tps": 160.0, "lifecycles": 3200},
    }
    result.update(changes)
    return result


INVENTORY = {"burst": {"events": 20000, "reservations_per_s": 662.0}, "baseline": {"tps": 1534.0}}
FLASH_SALE: dict[str, Any] = {
    "stock": 100,
    "result": {"orders": 1000, "placed": 1000, "unsettled": 0, "settle_all_seconds": 4.4621, "oversold": 0},
}
TIMERS = {"due_per_second": 1001, "lateness_p50_ms": 14500, "lateness_p99_ms": 30215}


def test_every_figure_of_the_four_scenarios_by_its_name():
    found = figures(
        {"orders": orders_result(), "inventory": INVENTORY, "flash-sale": FLASH_SALE, "timers": TIMERS}
    )
    assert found == {
        "orders_per_s": 40.0,
        "orders_pgbench_tps": 1160.0,
        "orders_ratio": 0.0345,
        "orders_cpu_ms": 16.0,
        "orders_pgbench_cpu_ms": 1.0,
        "orders_cpu_ratio": 16.0,
        "lifecycle_pgbench_tps": 160.0,
        "orders_lifecycle_ratio": 0.25,
        "inventory_per_s": 662.0,
        "inventory_pgbench_tps": 1534.0,
        "inventory_ratio": 0.4316,
        "flash_sale_settled_s": 4.462,
        "flash_sale_buyers": 1000,
        "flash_sale_oversold": 0,
        "expiry_late_p99_s": 30.215,
        "expiries_per_s": 1001,
    }


def test_a_pgbench_transaction_costs_postgresqls_and_pgbenchs_cpu_not_the_idle_stacks():
    baseline = {
        "tps": 1000.0,
        "cpu_ms_per_transaction": {
            "postgresql (primary + replica)": 1.5,
            "bench (load generator)": 0.1,
            "relay": 0.2,  # woken by pgbench's NOTIFY, finding nothing
            "kafka": 0.1,
        },
    }
    found = figures({"orders": orders_result(baseline=baseline)})
    assert found["orders_pgbench_cpu_ms"] == 1.6
    assert found["orders_cpu_ratio"] == 10.0


def test_a_scenario_that_did_not_run_leaves_its_figures_out():
    found = figures({"inventory": INVENTORY})
    assert set(found) == {"inventory_per_s", "inventory_pgbench_tps", "inventory_ratio"}
    assert "orders_ratio" not in found
    assert "flash_sale_oversold" not in found


def test_the_orders_scenario_without_its_lifecycle_baseline_has_no_lifecycle_figures():
    result = orders_result()
    del result["lifecycle"]
    found = figures({"orders": result})
    assert "lifecycle_pgbench_tps" not in found
    assert "orders_lifecycle_ratio" not in found
    assert found["orders_ratio"] == 0.0345


def test_no_sustained_rate_is_a_measured_zero_but_leaves_cpu_per_order_out():
    found = figures({"orders": orders_result(sustained_rate=0.0, cpu_ms_per_order={})})
    assert found["orders_per_s"] == 0.0
    assert found["orders_ratio"] == 0.0
    assert "orders_cpu_ms" not in found
    assert "orders_cpu_ratio" not in found
    assert found["orders_pgbench_cpu_ms"] == 1.0


def test_a_flash_sale_where_some_order_never_settled_has_no_settled_time():
    result = {"result": {**FLASH_SALE["result"], "unsettled": 3, "oversold": 1}}
    found = figures({"flash-sale": result})
    assert found == {"flash_sale_buyers": 1000, "flash_sale_oversold": 1}


def test_the_traced_run_is_measured_against_its_own_baseline():
    traced = orders_result(sustained_rate=30.0, cpu_ms_per_order={"gateway": 12.0, "jaeger": 8.0})
    del traced["lifecycle"]
    found = figures({"orders-traced": traced})
    assert found == {
        "orders_traced_per_s": 30.0,
        "orders_traced_ratio": 0.0259,
        "orders_traced_cpu_ms": 20.0,
        "orders_traced_cpu_ratio": 20.0,
    }


def test_goals_are_judged_only_for_measured_figures():
    found = figures({"flash-sale": FLASH_SALE, "timers": TIMERS})
    assert verdicts(found) == {
        "flash_sale_settled_s": True,
        "flash_sale_oversold": True,
        "expiry_late_p99_s": False,
    }


@pytest.mark.parametrize(
    ("needle"),
    [
        "| `orders_ratio`: sustained orders/s (p99 place → pay < 250 ms) | `orders_per_s` 40"
        " | `orders_pgbench_tps` 1,160 (pgbench, the placement) | 0.0345 | ≥ 0.12: **not met** |",
        "| `orders_cpu_ms` 16.00 ms | `orders_pgbench_cpu_ms` 1.000 ms per placement transaction | 16.0 |",
        "| `lifecycle_pgbench_tps` 160.0 (pgbench, placement to paid) | 0.2500 | ≥ 0.5: **not met** |",
        "| 4.462 s to settle all |  |  | ≤ 5 s: met |",
        "| `flash_sale_oversold` | 0 |  |  | 0: met |",
        "`expiries_per_s` 1,001 due per second | p99 30.215 s late |",
    ],
)
def test_the_table_shows_each_figure_beside_its_baseline_and_ratio(needle: str):
    found = figures({"orders": orders_result(), "flash-sale": FLASH_SALE, "timers": TIMERS})
    assert needle in markdown(found)


def test_no_figures_no_table():
    assert markdown({}) == ""
