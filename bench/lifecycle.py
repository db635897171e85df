"""The order lifecycle's SQL, replayed by pgbench: the `lifecycle_pgbench_tps` baseline.

Once per order, every SQL transaction an order causes from placement to paid, in the order the shop
runs them, with the statements the code issues (read from shop/actors, shop/handlers, shop/db,
shop/streams/saga.py and shop/relay.py, and checked against a libpq trace of that code; keep these
scripts in step with them):

orders database (ORDERS_SCRIPT)                 catalog database (CATALOG_SCRIPT)
 1. the placement: bench/placement.py PGBENCH_SCRIPT
    (with its commit position: place_order's
    unit of work tracks it)
 2. the relay claims and marks its 3 rows
                                                 3. the reservation (handle_order_created)
                                                 4. the relay claims and marks its 2 rows
 5. the stock outcome (handle_stock_outcome)
    and its `order_stock` notification
 6. the payment (pay_order -> answer_once ->
    handle_pay), with its commit position
 7. the relay claims and marks its 1 row
                                                 8. the sale (handle_order_paid)
                                                 9. the relay claims and marks its 1 row

Each unit of work (shop/db/unit_of_work.py) is one transaction on a connection in pipeline mode,
sent round trip for round trip as psycopg sends it. `conn.transaction()` in pipeline mode nests
pipelines around the block, so BEGIN goes out on its own; a statement whose result the code reads
waits for it with those queued before it (\\startpipeline ... \\endpipeline for several, a plain
statement for one); the block's end sends what is still queued (the writes, then the outbox rows: in
one INSERT ... SELECT FROM unnest when there are several, a VALUES row when there is one) and waits,
a bare Sync when nothing is (an empty \\startpipeline \\endpipeline); COMMIT on its own; the unit's
own pipeline closes with a bare Sync; then one statement in autocommit, after the commit: the
relay's wake-up `pg_notify('outbox', '')` when the unit wrote outbox rows, the notifications its
handler asked for (the stock outcome's `order_stock`, the order id, for a gateway holding a
`Prefer: wait` request) and `pg_current_wal_lsn()::text` when the unit tracks its commit position,
all in one SELECT. The relay's claim (`claim_unsent`: the oldest unsent rows FOR UPDATE) and mark
(`mark_sent`: by their ids), with BEGIN and COMMIT each a round trip of its own (an autocommit
connection, no pipeline), run once per transaction that wrote outbox rows, as a relay woken by
each wake-up does; the claim is wrapped so that pgbench learns the claimed ids (count and array_agg
over the same rows, nothing else read), and an empty claim marks nothing, as in the relay. The
tables' triggers (orders' orders_status_transition on the stock outcome's and the payment's UPDATEs:
update_order writes the status every time) run inside PostgreSQL, for pgbench as for the shop.

One order at a time: each record is handled in a transaction of its own, as the stream agents handle
a lone record. Under bursts they take the records piled up in a lane several at a time, in one
transaction (shop/streams/lanes.py and the batch agents of shop/streams/saga.py: the batch's locks
first, one commit and one after-commit statement for them all); this baseline is the per-order SQL,
and the shop may do better than it then.

pgbench connects to one database per run, and the lifecycle spans two (orders and catalog; auth is
not touched between placement and payment). So two pgbench processes run at the same time, one per
database, each running its share of N lifecycles (the same N on both sides: `-t` runs per client),
and the lifecycle rate is N divided by the time the slower one took: whole lifecycles completed per
second, both databases' work sharing the machine as they do in the shop. A short run of both (-T)
first sizes N for the wanted length.

What it writes stays out of what the shop reads: the outbox rows go to a scratch copy of `outbox`
in each database (same columns, constraints and indexes, the partial index of unsent rows
included), which no relay reads; the product is a scratch row of `products` whose events go to a
scratch copy of `product_events` (that table is append-only and the catalog's history); orders
belong to random customer ids under a prefix of this run; the inbox rows to consumers of their own.
Every row is deleted, and the scratch tables dropped, at the end. Ids are random (the shop's are
UUIDv7); the client's GET polls and the gateway's own reads are not part of the lifecycle.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from bench.catalog_scripts import PRODUCT_COLUMNS, RESERVED, product_event, product_updated, stock_reserved
from bench.pgbench import (
    SCRATCH_OUTBOX,
    WAKE_RELAY,
    WAKE_RELAY_WITH_LSN,
    OutboxRow,
    Run,
    outbox_rows,
    run_together,
    scratch_customers,
    scratch_outbox,
    unit_end,
)
from bench.placement import ORDER_ID, PGBENCH_SCRIPT, REQUEST_HASH
from shop.db.orders import LOCKED_COLUMNS, STOCK_SETTLED_CHANNEL

ORDER_STOCK_CONSUMER = "order-stock-lifecycle"  # the shop's: order-stock
INVENTORY_CONSUMER = "inventory-lifecycle"  # the shop's: inventory
SCRATCH_EVENTS = "pgbench_lifecycle_events"
STOCK = 100_000_000

# The stock outcome's after-commit statement: the `order_stock` notification a waiting gateway asked for.
STOCK_SETTLED = f"SELECT pg_notify('{STOCK_SETTLED_CHANNEL}', {ORDER_ID}::text);"


# The relay's batch (shop/relay.py _publish_batch, batch_size 500): BEGIN, claim_unsent, mark_sent
# when it claimed anything, COMMIT; autocommit connection, no pipeline.
RELAY_CLAIM = rf"""
BEGIN;
\set claimed 0
WITH claimed_rows AS (
    SELECT id, event_id, destination, topic, message_key, payload, headers, created_at
      FROM {SCRATCH_OUTBOX}
     WHERE published_at IS NULL
     ORDER BY id
     LIMIT 500
       FOR UPDATE
)
SELECT claimed_rows.*, count(*) OVER () AS claimed, array_agg(id) OVER () AS claimed_ids
  FROM claimed_rows \aset
\if :claimed > 0
UPDATE {SCRATCH_OUTBOX} SET published_at = now() WHERE id = ANY(:claimed_ids::bigint[]);
\endif
COMMIT;
"""

_ORDER_COLUMNS = (
    "id, user_id, status, stock, cancel_reason, total_cents, currency, created_at, updated_at, paid_at,"
    " expires_at"
)

# shop/db/orders.py lock_order: the columns of LockedOrder (the order's state for the rules of
# shop/domain/orders.py, and what its emails say), the row locked until the commit.
LOCK_ORDER = f"SELECT {LOCKED_COLUMNS} FROM orders o WHERE o.id = {ORDER_ID} FOR UPDATE;"


def _update_order(status: str, payment_reference: str, paid_at: str) -> str:
    """shop/db/orders.py update_order: every column an order's events change, written from the fold
    of the locked order (shop/domain/orders.py apply); for this lifecycle's order the stock is
    `reserved` and no cancel reason is set by then."""
    return f"""UPDATE orders SET status = '{status}', stock = 'reserved', cancel_reason = NULL,
       payment_reference = {payment_reference}, paid_at = {paid_at}, updated_at = now()
 WHERE id = {ORDER_ID};
"""


# 5. shop/handlers/orders.py handle_stock_outcome, stock.reserved (shop/streams/saga.py
# SagaAgents.stock_outcome): the inbox (read); the order locked (LOCK_ORDER, read: settle_stock
# decides from it); reserving -> reserved, written by update_order (the status, PENDING, written
# back unchanged), the only statement left queued, sent at the block's end; then the `order_stock`
# notification it asked for (no outbox rows, no commit position). 6 statements, 7 round trips.
STOCK_OUTCOME = f"""
BEGIN;
INSERT INTO inbox (consumer, event_id) VALUES ('{ORDER_STOCK_CONSUMER}', gen_random_uuid())
ON CONFLICT DO NOTHING RETURNING 1;
{LOCK_ORDER}
\\startpipeline
{_update_order("PENDING", "NULL", "NULL")}\\endpipeline
{unit_end(STOCK_SETTLED)}"""

# 6. shop/actors/orders.py pay_order -> transition -> shop/actors/commands.py answer_once ->
# shop/handlers/orders.py handle_pay: the ledger look-up (read); the order locked (LOCK_ORDER, read:
# pay decides from it); PAID, written by update_order, and the order read back in the same
# transaction (shop/db/orders.py order(): the order, then its lines, each read); the answer recorded
# and order.paid in the outbox (one row: VALUES), sent at the block's end; then the relay's wake-up
# and the commit's position. 10 statements, 9 round trips.
PAYMENT = f"""
BEGIN;
SELECT request_hash, answer FROM command_answers WHERE command_id = 'message:' || {ORDER_ID}::text;
{LOCK_ORDER}
\\startpipeline
{_update_order("PAID", "'psp-' || :a", "now()")}SELECT {_ORDER_COLUMNS} FROM orders WHERE id = {ORDER_ID};
\\endpipeline
SELECT order_id, product_id, quantity, unit_price_cents FROM order_lines WHERE order_id = {ORDER_ID}
 ORDER BY product_id;
\\startpipeline
INSERT INTO command_answers (command_id, actor, request_hash, answer)
VALUES ('message:' || {ORDER_ID}::text, 'pay_order', NULL,
        jsonb_build_object('answer', jsonb_build_object(
            'id', {ORDER_ID}::text, 'status', 'PAID', 'stock', 'reserved', 'cancel_reason', NULL,
            'items', jsonb_build_array(jsonb_build_object('product_id', :product::text, 'quantity', 1,
                                                          'unit_price_cents', 1000)),
            'total_cents', 1000, 'currency', 'EUR', 'created_at', now(), 'paid_at', now(),
            'expires_at', now() + interval '24 hours', 'updated_at', now())));
INSERT INTO {SCRATCH_OUTBOX} (event_id, destination, topic, message_key, payload, headers)
VALUES (gen_random_uuid(), 'kafka', 'order.paid', {ORDER_ID}::text,
        jsonb_build_object('schema', 'order.paid', 'schema_version', '1.0', 'event_id', gen_random_uuid(),
                           'occurred_at', now(), 'order_id', {ORDER_ID}::text, 'reason', NULL),
        '{{}}'::jsonb);
\\endpipeline
{unit_end(WAKE_RELAY_WITH_LSN)}"""

ORDERS_SCRIPT = PGBENCH_SCRIPT + RELAY_CLAIM + STOCK_OUTCOME + PAYMENT + RELAY_CLAIM

# Per order: BEGIN on its own, then shop/db/products.py lock_order with shop/db/inbox.py
# record_handled (read).
_LOCK_AND_INBOX = f"""
BEGIN;
\\startpipeline
SELECT pg_advisory_xact_lock(hashtextextended({ORDER_ID}::text, 0));
INSERT INTO inbox (consumer, event_id) VALUES ('{INVENTORY_CONSUMER}', gen_random_uuid())
ON CONFLICT DO NOTHING RETURNING 1;
\\endpipeline
"""

_SOLD = ("(:p_stock_available::int)", "(:p_stock_reserved::int - 1)")

# The reservation's outbox rows: product.updated and the stock.reserved answer.
_RESERVATION_ROWS = [
    OutboxRow("kafka", "product.updated", ":p_id::text", product_updated("StockReserved", *RESERVED)),
    OutboxRow("kafka", "stock.reserved", f"{ORDER_ID}::text", stock_reserved(f"{ORDER_ID}::text")),
]

# 3. shop/handlers/inventory.py handle_order_created (shop/streams/saga.py SagaAgents.inventory), one
# line of quantity 1: the order's lock and the inbox; reserved before or cancelled (shop/db/products.py
# reserved_or_cancelled, one read; shop/domain/inventory.py before_reserving decides); the product
# locked; StockReserved recorded (reserve_lines decides); the reservation (insert_reservation); the
# outbox rows, product.updated and the stock.reserved answer, in one INSERT ... SELECT FROM unnest;
# then the relay's wake-up. 11 statements, 9 round trips.
RESERVATION = f"""
\\set a random(1, 9223372036854775806)
\\set b random(1, 9223372036854775806)
{_LOCK_AND_INBOX}SELECT EXISTS (SELECT 1 FROM stock_reservations WHERE order_id = {ORDER_ID}),
       EXISTS (SELECT 1 FROM cancelled_orders WHERE order_id = {ORDER_ID});
SELECT {PRODUCT_COLUMNS} FROM products WHERE id = :product FOR UPDATE \\gset p_
{product_event(SCRATCH_EVENTS, f"{ORDER_ID}::text", "StockReserved", *RESERVED)}
INSERT INTO stock_reservations (order_id, product_id, quantity) VALUES ({ORDER_ID}, :p_id::uuid, 1);
{outbox_rows(SCRATCH_OUTBOX, _RESERVATION_ROWS)}\\endpipeline
{unit_end(WAKE_RELAY)}"""

# 8. shop/handlers/inventory.py handle_order_paid -> _settle (shop/streams/saga.py
# SagaAgents.settlement): the order's lock and the inbox; its held reservations locked
# (shop/db/products.py held_reservations, read); each product locked; StockSold recorded
# (shop/domain/inventory.py settle); the reservation sold (set_reservation_state); its one outbox row,
# product.updated (VALUES); then the relay's wake-up. 11 statements, 9 round trips.
SALE = f"""
{_LOCK_AND_INBOX}SELECT product_id, quantity FROM stock_reservations
 WHERE order_id = {ORDER_ID} AND state = 'reserved' ORDER BY product_id FOR UPDATE \\gset r_
SELECT {PRODUCT_COLUMNS} FROM products WHERE id = :r_product_id FOR UPDATE \\gset p_
{product_event(SCRATCH_EVENTS, f"{ORDER_ID}::text", "StockSold", *_SOLD)}
UPDATE stock_reservations SET state = 'sold', updated_at = now()
 WHERE order_id = {ORDER_ID} AND product_id = :r_product_id;
INSERT INTO {SCRATCH_OUTBOX} (event_id, destination, topic, message_key, payload, headers)
VALUES (gen_random_uuid(), 'kafka', 'product.updated', :p_id,
        {product_updated("StockSold", *_SOLD)},
        '{{}}'::jsonb);
\\endpipeline
{unit_end(WAKE_RELAY)}"""

CATALOG_SCRIPT = RESERVATION + RELAY_CLAIM + SALE + RELAY_CLAIM


# --- scratch data -----------------------------------------------------------------------------


@contextmanager
def scratch_catalog(db_url: str) -> Iterator[dict[str, str]]:
    """A product of STOCK units that exists only as a row of `products`, the scratch events table and
    outbox; the pgbench variables of CATALOG_SCRIPT. All removed at the end, with what it wrote."""
    product = uuid.uuid4()
    with psycopg.connect(db_url, autocommit=True) as conn:
        _remove_scratch_products(conn)  # a run killed before its end left its own
        conn.execute(f"DROP TABLE IF EXISTS {SCRATCH_EVENTS}")
        conn.execute(f"CREATE TABLE {SCRATCH_EVENTS} (LIKE product_events INCLUDING ALL EXCLUDING DEFAULTS)")
        conn.execute(f"CREATE SEQUENCE {SCRATCH_EVENTS}_seq OWNED BY {SCRATCH_EVENTS}.seq")
        conn.execute(f"ALTER TABLE {SCRATCH_EVENTS} ALTER seq SET DEFAULT nextval('{SCRATCH_EVENTS}_seq')")
        conn.execute(
            "INSERT INTO products (id, sku, name, description, price_cents, currency, stock_available,"
            " stock_reserved, version, created_at, updated_at)"
            " VALUES (%s, %s, 'pgbench lifecycle tea', 'bench/lifecycle.py', 1000, 'EUR', %s, 0, 1,"
            " now(), now())",
            (product, f"PGBENCH-LC-{product.hex[:12]}", STOCK),
        )
    try:
        with scratch_outbox(db_url):
            yield {"product": str(product)}
    finally:
        with psycopg.connect(db_url, autocommit=True) as conn:
            _remove_scratch_products(conn)
            conn.execute(f"DROP TABLE IF EXISTS {SCRATCH_EVENTS}")
            conn.execute("DELETE FROM inbox WHERE consumer = %s", (INVENTORY_CONSUMER,))


def _remove_scratch_products(conn: psycopg.Connection[Any]) -> None:
    """Every lifecycle scratch product (a row of `products` with no events: the catalog's replay
    would report it), with its reservations."""
    scratch = "SELECT id FROM products WHERE sku LIKE 'PGBENCH-LC-%'"
    conn.execute(f"DELETE FROM stock_reservations WHERE product_id IN ({scratch})")
    conn.execute(f"DELETE FROM products WHERE id IN ({scratch})")


@contextmanager
def scratch_orders(db_url: str, product_id: str) -> Iterator[dict[str, str]]:
    """The orders side's variables (customers under a prefix of their own, `product_id` a product
    the order side has a price for) and its scratch outbox; every row written removed at the end."""
    with scratch_customers(db_url) as customers, scratch_outbox(db_url):
        try:
            yield {**customers.variables, "product": product_id, "request_hash": REQUEST_HASH}
        finally:
            with psycopg.connect(db_url, autocommit=True) as conn:
                # Before the orders: the command ids are made of the order ids.
                conn.execute(
                    "DELETE FROM command_answers WHERE command_id IN"
                    " (SELECT 'message:' || id::text FROM orders WHERE user_id BETWEEN %s AND %s)",
                    (customers.first, customers.last),
                )
                conn.execute("DELETE FROM inbox WHERE consumer = %s", (ORDER_STOCK_CONSUMER,))


# --- the run ------------------------------------------------------------------------------------


def lifecycle_tps(lifecycles: int, sides: list[dict[str, Any]]) -> float:
    """Whole lifecycles per second: `lifecycles` over the time the slower side took to run its share."""
    slowest = max(float(side["duration_s"]) for side in sides)
    return lifecycles / slowest if slowest > 0 else 0.0


def run_lifecycle(
    orders_url: str, catalog_url: str, product_id: str, clients: int, seconds: int, sizing_seconds: int = 5
) -> dict[str, Any]:
    """`clients` connections on each database; N lifecycles sized to last about `seconds`."""
    with scratch_orders(orders_url, product_id) as orders_vars, scratch_catalog(catalog_url) as catalog_vars:

        def runs(**length: int) -> list[Run]:
            return [
                Run(
                    orders_url,
                    ORDERS_SCRIPT,
                    orders_vars,
                    clients,
                    "bench/lifecycle.py ORDERS_SCRIPT",
                    **length,
                ),
                Run(
                    catalog_url,
                    CATALOG_SCRIPT,
                    catalog_vars,
                    clients,
                    "bench/lifecycle.py CATALOG_SCRIPT",
                    **length,
                ),
            ]

        sizing = run_together(runs(seconds=sizing_seconds))
        per_client = max(1, round(min(side["tps"] for side in sizing) * seconds / clients))
        orders_side, catalog_side = run_together(runs(transactions=per_client))
    lifecycles = per_client * clients
    return {
        "lifecycles": lifecycles,
        "tps": round(lifecycle_tps(lifecycles, [orders_side, catalog_side]), 1),
        "clients_per_database": clients,
        "orders": orders_side,
        "catalog": catalog_side,
        "sizing": {
            "seconds": sizing_seconds,
            "orders_tps": sizing[0]["tps"],
            "catalog_tps": sizing[1]["tps"],
        },
        "how": "one pgbench per database at once, each running its share of the same N lifecycles;"
        " tps = N / the slower one's time",
    }
