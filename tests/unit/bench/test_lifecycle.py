"""The baselines' pgbench scripts (the placement, the lifecycle, the inventory's reservation): well
formed for pgbench, in the shop's order, with the code's statements and round trips; and the rate of
whole lifecycles from the two databases' runs."""

from __future__ import annotations

import re

import pytest

from bench import lifecycle
from bench.inventory import RESERVATION_SCRIPT
from bench.lifecycle import CATALOG_SCRIPT, ORDERS_SCRIPT, lifecycle_tps
from bench.pgbench import Run, parse_output
from bench.placement import PGBENCH_SCRIPT

SCRIPTS = [PGBENCH_SCRIPT, ORDERS_SCRIPT, CATALOG_SCRIPT, RESERVATION_SCRIPT]


def statements_and_round_trips(script: str) -> tuple[int, int]:
    """SQL statements (each ends a line with `;`, `\\gset` or `\\aset`; a conditional one counted) and
    round trips: one per statement outside a pipeline, one per pipeline (an empty one: a bare Sync)."""
    statements = round_trips = 0
    in_pipeline = False
    for line in script.splitlines():
        stripped = line.strip()
        if stripped == "\\startpipeline":
            in_pipeline = True
        elif stripped == "\\endpipeline":
            in_pipeline = False
            round_trips += 1
        elif stripped.endswith(";") or re.search(r"\\[ag]set\b", stripped):
            statements += 1
            round_trips += 0 if in_pipeline else 1
    return statements, round_trips


@pytest.mark.parametrize("script", SCRIPTS)
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


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_transaction_commits(script: str):
    assert script.count("BEGIN;") == script.count("COMMIT;") > 0


def test_the_orders_side_starts_with_the_placement_baseline_and_runs_in_the_shops_order():
    assert ORDERS_SCRIPT.startswith(PGBENCH_SCRIPT)
    steps = [
        "INSERT INTO orders",  # placement
        "SELECT pg_notify('outbox', ''), pg_current_wal_lsn()::text;",  # its wake-up and position
        "WITH claimed_rows",  # the relay
        "FROM orders o WHERE o.id = ",  # the stock outcome locks the order (lock_order),
        "UPDATE orders SET status = 'PENDING', stock = 'reserved'",  # then writes its fold
        "SELECT pg_notify('order_stock', ",  # its notification, for a waiting gateway
        "FROM orders o WHERE o.id = ",  # the payment locks it too,
        "UPDATE orders SET status = 'PAID'",  # then writes its fold
        "INSERT INTO command_answers",
        "SELECT pg_notify('outbox', ''), pg_current_wal_lsn()::text;",
        "WITH claimed_rows",
    ]
    at = 0
    for step in steps:
        at = ORDERS_SCRIPT.index(step, at) + 1
    # After the commit, one statement per unit of work: no NOTIFY, no transaction of its own for the
    # commit's position.
    assert "NOTIFY" not in ORDERS_SCRIPT
    assert ORDERS_SCRIPT.count("pg_current_wal_lsn()") == 2  # the placement and the payment
    assert ORDERS_SCRIPT.count("pg_notify(") == 3


def test_the_catalog_side_reserves_then_sells_and_the_relay_marks_after_each():
    reserve = CATALOG_SCRIPT.index("'StockReserved'")
    sell = CATALOG_SCRIPT.index("'StockSold'")
    claims = [m.start() for m in re.finditer("WITH claimed_rows", CATALOG_SCRIPT)]
    assert reserve < claims[0] < sell < claims[1]
    assert "NOTIFY" not in CATALOG_SCRIPT
    assert CATALOG_SCRIPT.count("SELECT pg_notify('outbox', '');") == 2
    assert "pg_current_wal_lsn" not in CATALOG_SCRIPT  # the agents' units do not track it
    # Nothing of the lifecycle lands in the tables the shop's relay and history read.
    for script in (ORDERS_SCRIPT, CATALOG_SCRIPT):
        assert "INTO outbox " not in script
        assert "INTO product_events " not in script


@pytest.mark.parametrize(
    ("script", "statements", "round_trips"),
    [
        # BEGIN; idempotency; prices; lock + unpaid; order, line, timers, idempotency record, outbox
        # rows (one unnest); COMMIT; bare Sync; wake-up + position.
        (PGBENCH_SCRIPT, 12, 8),
        (lifecycle.RELAY_CLAIM, 4, 4),
        # BEGIN; inbox; lock; UPDATE (sent at the block's end); COMMIT; bare Sync; order_stock.
        (lifecycle.STOCK_OUTCOME, 6, 7),
        # BEGIN; ledger; lock; PAID + order; lines; answer + outbox row; COMMIT; bare Sync; wake-up.
        (lifecycle.PAYMENT, 10, 9),
        # BEGIN; lock + inbox; EXISTS; product; event; projection, reservation, outbox rows (one
        # unnest); COMMIT; bare Sync; wake-up.
        (lifecycle.RESERVATION, 11, 9),
        (RESERVATION_SCRIPT, 11, 9),
        # BEGIN; lock + inbox; reservation; product; event; projection, reservation sold, outbox
        # row; COMMIT; bare Sync; wake-up.
        (lifecycle.SALE, 11, 9),
    ],
)
def test_each_unit_of_work_has_the_codes_statements_and_round_trips(
    script: str, statements: int, round_trips: int
):
    assert statements_and_round_trips(script) == (statements, round_trips)


def test_several_outbox_rows_go_in_one_statement():
    for script in (PGBENCH_SCRIPT, lifecycle.RESERVATION, RESERVATION_SCRIPT):
        assert script.count("INTO pgbench_outbox") + script.count("INTO outbox") == 1
        assert "WITH ORDINALITY" in script


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
