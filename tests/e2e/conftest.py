from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from harness.stack import ShopStack
from tests.e2e.leaks import leaks, mailed_codes
from tests.e2e.stack import LOGS, e2e_stack
from tests.e2e.test_auth import ODD_PASSWORD, PASSWORD

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def stack(settings) -> Iterator[ShopStack]:
    started = datetime.now(UTC)
    running = e2e_stack()
    running.start()
    yield running
    running.stop()
    # The last check of the suite: no secret in any line that any stack of the run logged (this one,
    # the timer tests' own, the chaos run's) while every test drove it.
    chaos_log = Path("var/log/chaos.log")
    logs = [
        *LOGS,
        *([chaos_log] if chaos_log.exists() and chaos_log.stat().st_mtime > started.timestamp() else []),
    ]
    codes = mailed_codes(started)
    found = [
        f"{log.name} {leak}"
        for log in logs
        if log.exists()
        for leak in leaks(
            log.read_text(errors="replace").splitlines(),
            [PASSWORD, ODD_PASSWORD],
            codes,
            settings.auth.code_pepper,
        )
    ]
    assert not found, f"{len(found)} log line(s) show a secret:\n" + "\n".join(found[:20])


@pytest.fixture(autouse=True)
def stock_adds_up(settings):
    """After every end-to-end test: initial stock + restocks = available + reserved + sold, per
    product, and no reservation held by an order the inventory knows was cancelled."""
    yield
    import psycopg

    from shop.db.products import reservations_of_ended_orders, stock_that_does_not_add_up

    with psycopg.connect(settings.databases["catalog"].primary_url) as conn:
        broken = stock_that_does_not_add_up(conn)
        held = reservations_of_ended_orders(conn)
    assert broken == [], f"stock does not add up (sku, supplied, available, reserved, sold, held): {broken}"
    assert held == [], f"reservations held by cancelled orders (order, product, quantity): {held}"
