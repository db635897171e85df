"""The benchmark runner: every scenario it names exists, and a summary row is made of each result."""

from __future__ import annotations

import importlib

from bench.__main__ import SCENARIOS, flash_sale_rows, inventory_rows, orders_rows, summary_markdown


def test_every_scenario_is_a_runnable_module():
    for name, scenario in SCENARIOS.items():
        module = importlib.import_module(scenario.module)
        assert callable(module.main), name
        assert scenario.output.endswith(".json")


def test_the_orders_row_reports_the_ratio_against_the_baseline_and_the_target():
    result = {
        "sustained_rate": 40.0,
        "ratio": 0.0345,
        "target_met": False,
        "baseline": {"tps": 1160.0, "cpu_ms_per_transaction": {"postgresql": 0.7, "bench": 0.3}},
        "cpu_ms_per_order": {"postgresql": 7.6, "gateway": 7.4},
        "at_half": {
            "offered_rate": 20.0,
            "p50_ms": 40.0,
            "p95_ms": 48.0,
            "p99_ms": 64.0,
            "place_p99_ms": 22.0,
        },
    }
    rows = orders_rows(result)
    assert rows[0][1:] == ("40 orders/s", "pgbench, placement's SQL: 1,160 tps", "3.5%", "≥ 35%: **not met**")
    assert rows[1][1].startswith("15.0 ms")
    assert rows[1][3] == "15×"
    assert "40 / 48 / 64 ms" in rows[2]


def test_an_oversold_flash_sale_fails_its_target():
    result = {
        "stock": 50,
        "result": {
            "orders": 300,
            "settle_all_seconds": 4.5,
            "reserved": 51,
            "cancelled_out_of_stock": 249,
            "oversold": 1,
            "passed": False,
        },
    }
    assert flash_sale_rows(result)[0][4] == "oversold 0: **not met** (oversold 1)"


def test_the_summary_names_the_machine_and_each_run_time():
    rows = inventory_rows(
        {
            "burst": {"events": 20000, "reservations_per_s": 351.0},
            "steady": {"offered_rate": 175.4, "lag_p99": 4, "lag_max": 5, "latency_p99_ms": 21.0},
            "baseline": {"tps": 1630.0},
            "ratio": 0.215,
            "target_met": False,
        }
    )
    runs = [
        {"scenario": "inventory", "seconds": 102.0, "ok": True},
        {"scenario": "relay", "seconds": 26, "ok": False},
    ]
    text = summary_markdown(
        rows, runs, {"cores": 2, "memory_gib": 23.5, "python": "3.11", "postgresql": "15"}
    )
    assert "| inventory: 20,000 order.created at once" in text
    assert "21.5%" in text
    assert "2 cores, 23.5 GiB" in text
    assert "inventory 102 s, relay 26 s (FAILED); in all 2.1 min" in text
