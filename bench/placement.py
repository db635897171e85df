"""One placement's SQL as pgbench replays it: the orders scenario's baseline (bench/orders.py), and the
first transaction of the lifecycle's (bench/lifecycle.py)."""

from __future__ import annotations

from bench.pgbench import SCRATCH_OUTBOX, WAKE_RELAY_WITH_LSN, OutboxRow, outbox_rows, unit_end

# The order's id and its customer's, from the script's random :a, :b and :u.
ORDER_ID = "(lpad(to_hex(:a::bigint), 16, '0') || lpad(to_hex(:b::bigint), 16, '0'))::uuid"
USER_ID = "(:users || lpad(to_hex(:u::bigint), 12, '0'))::uuid"


def _trigger(actor: str, kind: str, delay_ms: int) -> str:
    """The payload of a timer's trigger: `actor`'s message for the order's `kind` timer, delayed."""
    return f"""jsonb_build_object(
           'actor_name', '{actor}', 'args', '[]'::jsonb,
           'kwargs', jsonb_build_object('order_id', {ORDER_ID}, 'kind', '{kind}'),
           'delay_ms', {delay_ms})"""


_ORDER_CREATED = f"""jsonb_build_object(
           'schema', 'order.created', 'schema_version', '1.0', 'event_id', gen_random_uuid(),
           'occurred_at', now(), 'order_id', {ORDER_ID}, 'user_id', {USER_ID},
           'lines', jsonb_build_array(
             jsonb_build_object('product_id', :product::uuid, 'quantity', 1, 'unit_price_cents', 1000)),
           'total_cents', 1000, 'currency', 'EUR')"""

# The outbox rows of the placement: the triggers of the first reminder and of the expiry, then
# order.created.
_OUTBOX_ROWS = [
    OutboxRow("rabbitmq", "timers", "NULL", _trigger("send_payment_reminder", "reminder_1", 14_400_000)),
    OutboxRow("rabbitmq", "timers", "NULL", _trigger("expire_order", "expiry", 86_400_000)),
    OutboxRow("kafka", "order.created", f"{ORDER_ID}::text", _ORDER_CREATED),
]

# One placement, as place_order runs it with the default unpaid limits (shop/actors/orders.py ->
# shop/handlers/orders.py handle_place_order -> shop/db/orders.py, shop/db/timers.py, shop/db/outbox.py,
# shop/db/unit_of_work.py), sent as psycopg's pipeline mode sends it, round trip for round trip (a
# libpq trace of the code shows the same): BEGIN on its own (conn.transaction() in pipeline mode syncs
# it before the block); the idempotency look-up; the prices; the customer's lock with their unpaid
# orders; then, in one round trip, the order, its line, its 4 timers in one INSERT ... SELECT FROM
# unnest (default SHOP_ORDER_REMINDERS 4h,12h,22h + the 24 h expiry), the idempotency record, and the
# outbox rows in one INSERT ... SELECT FROM unnest (the triggers of the first reminder and of the
# expiry, then order.created); COMMIT on its own; the unit of work's pipeline closing with nothing
# queued (a bare Sync: the empty \startpipeline ... \endpipeline); then, in autocommit, one statement
# for the relay's wake-up and the commit's WAL position (the unit tracks it). The placement answers
# from what it wrote: no read after the commit. The orders tables' only trigger (orders_status_transition,
# BEFORE UPDATE OF status) does not fire on these INSERTs (PostgreSQL runs it where it does, for pgbench
# as for the shop: the stock outcome and the payment in bench/lifecycle.py). The outbox rows go
# unsent, as the shop writes them, into a scratch copy of `outbox` that no relay reads
# (bench/pgbench.py SCRATCH_OUTBOX). Each placement is a new customer's (:users prefix + :u): the
# shop's customers hold a few unpaid orders at most, not the run's thousands. Ids are random (the app
# uses UUIDv7).
# 12 statements, 8 round trips.
PGBENCH_SCRIPT = f"""
\\set a random(1, 9223372036854775806)
\\set b random(1, 9223372036854775806)
\\set u random(1, 281474976710655)
BEGIN;
SELECT request_hash, order_id FROM idempotency_records WHERE user_id = {USER_ID} AND key = 'pgb-' || :a;
SELECT product_id, price_cents, currency FROM product_prices WHERE product_id = ANY(ARRAY[:product::uuid]);
\\startpipeline
SELECT pg_advisory_xact_lock(hashtextextended((:users || lpad(to_hex(:u::bigint), 12, '0'))::text, 0));
SELECT count(DISTINCT o.id), coalesce(sum(l.quantity), 0)
  FROM orders o JOIN order_lines l ON l.order_id = o.id
 WHERE o.user_id = {USER_ID} AND o.status = 'PENDING';
\\endpipeline
\\startpipeline
INSERT INTO orders (id, user_id, total_cents, currency, created_at, updated_at, expires_at, customer_email)
VALUES ({ORDER_ID}, {USER_ID},
        1000, 'EUR', now(), now(), now() + interval '24 hours', 'pgbench@example.test');
INSERT INTO order_lines (order_id, product_id, quantity, unit_price_cents)
VALUES ({ORDER_ID}, :product, 1, 1000);
INSERT INTO order_timers (order_id, kind, due_at)
SELECT {ORDER_ID}, kind, due_at
  FROM unnest(ARRAY['reminder_1', 'reminder_2', 'reminder_3', 'expiry']::text[],
              ARRAY[now() + interval '4 hours', now() + interval '12 hours', now() + interval '22 hours',
                    now() + interval '24 hours']::timestamptz[]) AS t(kind, due_at);
INSERT INTO idempotency_records (user_id, key, request_hash, order_id, placement_id)
VALUES ({USER_ID}, 'pgb-' || :a, :request_hash, {ORDER_ID}, gen_random_uuid());
{outbox_rows(SCRATCH_OUTBOX, _OUTBOX_ROWS)}\\endpipeline
{unit_end(WAKE_RELAY_WITH_LSN)}"""
# What handle_place_order stores as the request's hash (a SHA-256 in hex).
REQUEST_HASH = "9" * 64
