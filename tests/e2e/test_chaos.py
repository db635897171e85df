"""The short chaos run in CI (`make chaos-short`, bench/chaos): one fault of each kind under a steady
load of retrying clients — every process kind killed, RabbitMQ and Kafka crashed, Redis emptied, the
replica away — then every invariant: no order lost or doubled, none stuck, stock adds up, every
outbox row sent, every due timer fired, every email delivered and none twice.

It restarts the servers every other test talks to, so it runs last (tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.chaos.__main__ import SHORT, markdown, run

pytestmark = pytest.mark.chaos


@pytest.mark.timeout(1200)
def test_one_fault_of_each_kind_under_load_breaks_no_invariant(stack):
    # The suite's own stack would compete for the outbox leases (and publish the run's rows to its
    # vhost) and for the agents' partitions: the chaos run brings its stack, with worker pools.
    stack.stop()
    results = run(SHORT)
    table = markdown(results)
    out = Path("var/bench/chaos-short.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table)
    print(table)
    failed = [check["name"] for check in results["checks"] if not check["passed"]]
    assert not failed, table
    # Clients retry for up to 90 s: every operation must have got through in the end.
    assert results["operations_failed"] == 0, table
    assert not results["unsettled"], table
