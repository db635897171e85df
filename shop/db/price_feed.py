"""SQL of the price feed on the orders database. Every query is parameterised; callers own the
transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from psycopg.rows import class_row

from shop.db.connections import Conn


@dataclass(frozen=True)
class ProductPriceRow:
    product_id: UUID
    sku: str | None
    name: str | None
    price_cents: int
    currency: str
    version: int
    updated_at: datetime


def upsert_product_price(
    conn: Conn,
    product_id: UUID,
    sku: str,
    name: str,
    price_cents: int,
    currency: str,
    version: int,
) -> bool:
    """Stores the product's price as of `version` unless a version at least as new is stored;
    True when the row was written."""
    cur = conn.execute(
        """
        INSERT INTO product_prices (product_id, sku, name, price_cents, currency, version)
        VALUES (%s, %s, %s, %s, %s, %s)
        ON CONFLICT (product_id) DO UPDATE
            SET sku = EXCLUDED.sku,
                name = EXCLUDED.name,
                price_cents = EXCLUDED.price_cents,
                currency = EXCLUDED.currency,
                version = EXCLUDED.version,
                updated_at = now()
            WHERE product_prices.version < EXCLUDED.version
        RETURNING version
        """,
        (product_id, sku, name, price_cents, currency, version),
    )
    return cur.fetchone() is not None


def product_price(conn: Conn, product_id: UUID) -> ProductPriceRow | None:
    with conn.cursor(row_factory=class_row(ProductPriceRow)) as cur:
        cur.execute(
            """
            SELECT product_id, sku, name, price_cents, currency, version, updated_at
            FROM product_prices WHERE product_id = %s
            """,
            (product_id,),
        )
        return cur.fetchone()
