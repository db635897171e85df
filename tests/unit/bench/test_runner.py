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
        "baseline": {
            "tps": 1160.0,
            "cpu_ms_per_transaction": {
                "postgresql (primary + replica)": 0.7,
                "bench (load generator)": 0.3,
                "relay": 0.2,
            },
        },
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
    assert rows[0][1:] == ("40 orders/s", "pgbench, placement's SQL: 1,160 tps", "3.5%", "≥ 12%: **not met**")
    assert rows[1][1].startswith("15.0 ms")
    assert rows[1][3:] == ("15.0×", "≤ 8×: **not met**")
    assert "40 / 48 / 64 ms" in rows[2]


def test_the_lifecycle_row_and_a_traced_run_without_goals():
    result = {
        "sustained_rate": 40.0,
        "ratio": 0.0345,
        "target_met": False,
        "baseline": {"tps": 1160.0},
        "lifecycle": {"tps": 64.0},
        "lifecycle_ratio": 0.625,
    }
    rows = orders_rows(result)
    assert rows[1][2:] == ("pgbench, both databases at once: 64.0 lifecycles/s", "62.5%", "≥ 50%: met")
    traced = orders_rows({**result, "tracing": {"OTEL_TRACES_SAMPLER_ARG": "0.1"}})
    assert traced[0][0].startswith("orders, traced (0.1 of traces): ")
    assert traced[0][4] == ""


def test_optional_scenarios_run_only_when_named():
    assert SCENARIOS["orders-traced"].optional
    assert dict(SCENARIOS["orders-traced"].env)["OTEL_SDK_DISABLED"] == "false"
    assert "--trace-ratio" in SCENARIOS["orders-traced"].args
    assert not any(SCENARIOS[name].optional for name in ("orders", "inventory", "flash-sale", "timers"))


def test_the_suite_sizes_of_issue_20():
    flash = SCENARIOS["flash-sale"].args
    customers, each = int(flash[flash.index("--customers") + 1]), int(flash[flash.index("--orders-each") + 1])
    assert customers * each == 1000
    assert flash[flash.index("--stock") + 1] == "100"
    timers = SCENARIOS["timers"].args
    assert timers[timers.index("--rate") + 1] == "1000"
    assert timers[timers.index("--seconds") + 1] == "30"


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
    assert "| figure |" not in text  # no figures given, no figures table


def test_the_summary_starts_with_the_figures_table():
    text = summary_markdown(
        [], [], {}, {"inventory_per_s": 662.0, "inventory_pgbench_tps": 1534.0, "inventory_ratio": 0.4316}
    )
    assert text.startswith("| figure | measured | baseline (same run) | ratio | goal (issue 20) |")
    assert "| `inventory_per_s` 662.0 | `inventory_pgbench_tps` 1,534" in text
