"""What the API answers for each resource: one encoding, used by actors' results and routes alike."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shop.db.orders import LineRow, OrderRow
from shop.domain.products import Product


def product_view(product: Product) -> dict[str, Any]:
    return {
        "id": str(product.id),
        "sku": product.sku,
        "name": product.name,
        "description": product.description,
        "price_cents": product.price_cents,
        "currency": product.currency,
        "stock_available": product.stock_available,
        "version": product.version,
        "created_at": product.created_at.isoformat(),
        "updated_at": product.updated_at.isoformat(),
    }


def order_view(order: OrderRow, lines: Sequence[LineRow]) -> dict[str, Any]:
    return {
        "id": str(order.id),
        "status": order.status,
        "stock": order.stock,
        "cancel_reason": order.cancel_reason,
        "items": [
            {
                "product_id": str(line.product_id),
                "quantity": line.quantity,
                "unit_price_cents": line.unit_price_cents,
            }
            for line in lines
        ],
        "total_cents": order.total_cents,
        "currency": order.currency,
        "created_at": order.created_at.isoformat(),
        "paid_at": order.paid_at.isoformat() if order.paid_at else None,
        "expires_at": order.expires_at.isoformat(),
        "updated_at": order.updated_at.isoformat(),
    }
