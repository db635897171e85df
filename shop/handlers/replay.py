"""`shop replay products`: rebuild the catalog projection from its events and compare.

The events are the truth. The rebuild folds every product's events with the same `apply` that
maintains the live projection, into a scratch table, in one snapshot of the database, and lists
every row that differs. With `apply=True` it then swaps the rebuilt rows in, under a lock that
holds writers back for the few moments it takes.
"""

from __future__ import annotations

from shop.db import products as db
from shop.db import replay as replay_db
from shop.db.connections import Conn
from shop.domain.products import Event, Product, apply


def _rebuild(conn: Conn) -> int:
    replay_db.create_scratch(conn)
    current: Product | None = None
    count = 0
    for stored in db.all_events(conn):
        if current is not None and current.id != stored.product_id:
            db.insert_product(conn, current, table=replay_db.SCRATCH)
            count += 1
            current = None
        current = apply(
            current, Event(stored.type, stored.data), stored.product_id, stored.version, stored.occurred_at
        )
    if current is not None:
        db.insert_product(conn, current, table=replay_db.SCRATCH)
        count += 1
    return count


def _describe(difference: replay_db.Difference) -> str:
    product_id = difference.product_id
    if not difference.in_events:
        return f"product {product_id}: in the projection but has no events"
    if not difference.in_projection:
        return f"product {product_id}: in the events but missing from the projection"
    changed = [
        f"{name} {live!r} (projection) != {rebuilt!r} (events)"
        for name, live, rebuilt in difference.changed()
    ]
    return f"product {product_id}: " + "; ".join(changed)


def replay_products(url: str, apply_changes: bool) -> tuple[int, list[str]]:
    """(products rebuilt, differences). Applies the rebuild when asked and there are differences."""
    with replay_db.snapshot(url) as conn:
        if apply_changes:
            replay_db.hold_writers_back(conn)
        count = _rebuild(conn)
        differences = [_describe(d) for d in replay_db.differences(conn)]
        if apply_changes and differences:
            replay_db.replace_projection(conn)
    return count, differences
