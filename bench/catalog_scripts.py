"""The catalog's SQL that both reservation baselines replay (bench/inventory.py's and the lifecycle's
catalog side, bench/lifecycle.py): a product locked into the script's `:p_*` variables, a stock event
recorded on it, and the payloads of the outbox rows that answer it."""

from __future__ import annotations

# The columns of a product (shop/db/products.py), read into :p_* by `\gset p_`.
PRODUCT_COLUMNS = (
    "id, sku, name, description, price_cents, currency, stock_available, stock_reserved, version,"
    " created_at, updated_at"
)

# One unit reserved: the product's stock after it (available, reserved).
RESERVED = ("(:p_stock_available::int - 1)", "(:p_stock_reserved::int + 1)")


def product_event(events: str, order_id: str, kind: str, available: str, reserved: str) -> str:
    """shop/handlers/products.py record_event on the locked product: the event appended to `events`
    (its seq read), the projection's row rewritten (shop/db/products.py update_product); its
    product.updated row goes to the unit's outbox rows (product_updated). `order_id`: the SQL of the
    order's id as text. The caller's pipeline is open after it."""
    return f"""
INSERT INTO {events} (event_id, product_id, version, type, data, occurred_at)
VALUES (gen_random_uuid(), :p_id::uuid, :p_version::int + 1, '{kind}',
        jsonb_build_object('order_id', {order_id}, 'quantity', 1), now())
RETURNING seq;
\\startpipeline
UPDATE products SET sku = :p_sku, name = :p_name, description = :p_description,
       price_cents = :p_price_cents::int, currency = :p_currency,
       stock_available = {available}, stock_reserved = {reserved}, version = :p_version::int + 1,
       updated_at = now()
 WHERE id = :p_id::uuid;
"""


def product_updated(kind: str, available: str, reserved: str) -> str:
    """The payload of the product.updated row record_event queues (shop/schemas/events.py
    encode_product_event: the snapshot after it)."""
    return f"""jsonb_build_object(
           'schema', 'product.updated', 'schema_version', '1.0', 'event_id', gen_random_uuid(),
           'occurred_at', now(), 'product_id', :p_id::text, 'version', :p_version::int + 1,
           'type', '{kind}',
           'data', jsonb_build_object('sku', :p_sku::text, 'name', :p_name::text,
                                      'description', :p_description::text,
                                      'price_cents', :p_price_cents::int, 'currency', :p_currency::text,
                                      'stock_available', {available}, 'stock_reserved', {reserved}))"""


def stock_reserved(order_id: str) -> str:
    """The payload of the stock.reserved answer to the order (`order_id`: the SQL of its id as text)."""
    return f"""jsonb_build_object(
           'schema', 'stock.reserved', 'schema_version', '1.0', 'event_id', gen_random_uuid(),
           'occurred_at', now(), 'order_id', {order_id}, 'reason', NULL)"""
