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


_STOCK_DOES_NOT_ADD_UP = """
WITH flows AS (
    SELECT product_id,
           sum(CASE type WHEN 'ProductCreated' THEN (data->>'stock')::int
                         WHEN 'StockAdjusted' THEN (data->>'delta')::int ELSE 0 END) AS supplied,
           sum(CASE type WHEN 'StockSold' THEN (data->>'quantity')::int ELSE 0 END) AS sold
      FROM product_events GROUP BY product_id
), held AS (
    SELECT product_id, sum(quantity) AS reserved FROM stock_reservations
     WHERE state = 'reserved' GROUP BY product_id
)
SELECT p.sku, f.supplied, p.stock_available, p.stock_reserved, f.sold, coalesce(h.reserved, 0)
  FROM products p JOIN flows f ON f.product_id = p.id LEFT JOIN held h ON h.product_id = p.id
 WHERE f.supplied <> p.stock_available + p.stock_reserved + f.sold
    OR p.stock_available < 0 OR p.stock_reserved < 0
    OR p.stock_reserved <> coalesce(h.reserved, 0)
"""


@pytest.fixture(autouse=True)
def stock_adds_up(settings):
    """After every end-to-end test: initial stock + restocks = available + reserved + sold, per product."""
    yield
    import psycopg

    with psycopg.connect(settings.databases["catalog"].primary_url) as conn:
        broken = conn.execute(_STOCK_DOES_NOT_ADD_UP).fetchall()
    assert broken == [], f"stock does not add up (sku, supplied, available, reserved, sold, held): {broken}"
