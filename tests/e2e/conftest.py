from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.stack import SupervisedStack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def stack() -> Iterator[SupervisedStack]:
    running = SupervisedStack()
    running.start()
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def stock_adds_up(settings):
    """After every end-to-end test: initial stock + restocks = available + reserved + sold, per product."""
    yield
    import psycopg

    from shop.db.products import stock_that_does_not_add_up

    with psycopg.connect(settings.databases["catalog"].primary_url) as conn:
        broken = stock_that_does_not_add_up(conn)
    assert broken == [], f"stock does not add up (sku, supplied, available, reserved, sold, held): {broken}"
