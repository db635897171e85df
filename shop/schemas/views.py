"""What the API answers for each resource: one encoding, used by actors' results and routes alike."""

from __future__ import annotations

from typing import Any

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
