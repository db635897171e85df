"""Catalog actors (admin commands). A rule the command breaks (duplicate sku, stale version,
stock below reserved) is an answer, not a failure: it is returned, not raised, so it is neither
retried nor dead-lettered."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from shop import bootstrap
from shop.actors.commands import command_actor, refusal
from shop.db.unit_of_work import UnitOfWork
from shop.domain.products import CatalogError, Product
from shop.handlers.products import (
    AdjustStock,
    CreateProduct,
    PatchProduct,
    handle_adjust_stock,
    handle_create,
    handle_patch,
)
from shop.schemas.views import product_view

QUEUE = "products"


def _run(work: Any) -> dict[str, Any]:
    uow = UnitOfWork(bootstrap.primary_pool("catalog"), track_lsn=True)
    try:
        product: Product = work(uow)
    except CatalogError as exc:
        return refusal(exc)
    return {"product": product_view(product), "commit_lsn": uow.commit_lsn}


# `trace_headers`: ignored, accepted from messages of a gateway older than the tracing middleware
# (the trace context now travels in every message's options, shop/actors/observability.py).


@command_actor(QUEUE)
def create_product(fields: dict[str, Any], trace_headers: Any = None) -> dict[str, Any]:
    return _run(lambda uow: handle_create(CreateProduct(fields), uow, bootstrap.utc_now))


@command_actor(QUEUE)
def patch_product(
    product_id: str, changes: dict[str, Any], expected_version: int, trace_headers: Any = None
) -> dict[str, Any]:
    command = PatchProduct(UUID(product_id), changes, expected_version)
    return _run(lambda uow: handle_patch(command, uow, bootstrap.utc_now))


@command_actor(QUEUE)
def adjust_stock(product_id: str, delta: Any, trace_headers: Any = None) -> dict[str, Any]:
    command = AdjustStock(UUID(product_id), delta)
    return _run(lambda uow: handle_adjust_stock(command, uow, bootstrap.utc_now))
