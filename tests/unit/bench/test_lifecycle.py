"""The lifecycle's pgbench scripts: well formed for pgbench, in the shop's order, and the rate of
whole lifecycles from the two databases' runs."""

from __future__ import annotations

import re

import pytest

from bench.lifecycle import CATALOG_SCRIPT, ORDERS_SCRIPT, lifecycle_tps
from bench.orders import PGBENCH_SCRIPT
from bench.pgbench import Run, parse_output


@pytest.mark.parametrize("script", [PGBENCH_SCRIPT, ORDERS_SCRIPT, CATALOG_SCRIPT])
def test_pipelines_are_closed_and_read_nothing(script: str):
    """pgbench refuses \\gset and \\aset inside a pipeline, and a pipeline left open."""
    open_pipeline = False
    for line in script.splitlines():
        if line.startswith("\\startpipeline"):
            assert not open_pipeline
            open_pipeline = True
        elif line.startswith("\\endpipeline"):
            assert open_pipeline
            open_pipeline = False
        elif "\\gset" in line or "\\aset" in line:
            assert not open_pipeline, line
    assert not open_pipeline


@pytest.mark.parametrize("script", [PGBENCH_SCRIPT, ORDERS_SCRIPT, CATALOG_SCRIPT])
def test_every_transaction_commits(script: str):
    assert script.count("BEGIN;") == script.count("COMMIT;") > 0


def test_the_orders_side_starts_with_the_placement_baseline_and_runs_in_the_shops_order():
    assert ORDERS_SCRIPT.startswith(PGBENCH_SCRIPT)
    steps = [
        "INSERT INTO orders",  # placement
        "SELECT pg_current_wal_lsn()",  # its commit position
        "WITH claimed_rows",  # the relay
        "UPDATE orders SET stock = 'reserved'",  # the stock outcome
        "UPDATE orders SET status = 'PAID'",  # the payment
        "INSERT INTO command_answers",
        "WITH claimed_rows",
    ]
    at = 0
    for step in steps:
        at = ORDERS_SCRIPT.index(step, at) + 1
    assert ORDERS_SCRIPT.count("NOTIFY outbox;") == 2  # after the placement and the payment


def test_the_catalog_side_reserves_then_sells_and_the_relay_marks_after_each():
    reserve = CATALOG_SCRIPT.index("'StockReserved'")
    sell = CATALOG_SCRIPT.index("'StockSold'")
    claims = [m.start() for m in re.finditer("WITH claimed_rows", CATALOG_SCRIPT)]
    assert reserve < claims[0] < sell < claims[1]
    assert CATALOG_SCRIPT.count("NOTIFY outbox;") == 2
    # Nothing of the lifecycle lands in the tables the shop's relay and history read.
    for script in (ORDERS_SCRIPT, CATALOG_SCRIPT):
        assert "INTO outbox " not in script
        assert "INTO product_events " not in script


def test_lifecycles_per_second_wait_for_the_slower_database():
    sides = [{"duration_s": 20.0}, {"duration_s": 25.0}]
    assert lifecycle_tps(3000, sides) == 120.0


PGBENCH_OUTPUT = """\
transaction type: /tmp/x.sql
scaling factor: 1
query mode: prepared
number of clients: 4
number of threads: 2
maximum number of tries: 1
number of transactions per client: 500
number of transactions actually processed: 2000/2000
number of failed transactions: 0 (0.000%)
latency average = 33.730 ms
initial connection time = 12.251 ms
tps = 118.588876 (without initial connection time)
"""


def test_pgbench_output_is_read_with_the_duration_of_a_fixed_count_run():
    run = Run("postgresql://x", "", {}, 4, "test", transactions=500)
    assert "-t" in run.command("/tmp/x.sql")
    assert "-T" not in run.command("/tmp/x.sql")
    parsed = parse_output(run, PGBENCH_OUTPUT)
    assert parsed["tps"] == 118.588876
    assert parsed["transactions"] == 2000
    assert parsed["duration_s"] == pytest.approx(16.865, abs=0.001)
    assert parsed["latency_avg_ms"] == 33.73
