"""Order events on Kafka (`order.created`, version 1.0). The inventory agent decodes them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from shop.domain.orders import PricedLine

ORDER_CREATED = "order.created"
SCHEMA_VERSION = "1.0"


def encode_order_created(
    event_id: UUID,
    occurred_at: datetime,
    order_id: UUID,
    user_id: UUID,
    lines: Sequence[PricedLine],
    total_cents: int,
    currency: str,
) -> dict[str, Any]:
    return {
        "schema": ORDER_CREATED,
        "schema_version": SCHEMA_VERSION,
        "event_id": str(event_id),
        "occurred_at": occurred_at.isoformat(),
        "order_id": str(order_id),
        "user_id": str(user_id),
        "lines": [
            {
                "product_id": str(line.product_id),
                "quantity": line.quantity,
                "unit_price_cents": line.unit_price_cents,
            }
            for line in lines
        ],
        "total_cents": total_cents,
        "currency": currency,
    }
