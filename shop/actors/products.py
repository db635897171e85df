"""Catalog actors (admin commands). A rule the command breaks (duplicate sku, stale version,
stock below reserved) is an answer, not a failure: it is returned, not raised, so it is neither
retried nor dead-lettered. Each command is done once (shop.actors.commands.answer_once), per
message, or per Idempotency-Key when the admin sent one."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from uuid import UUID

from shop import bootstrap
from shop.actors.commands import answer_once, command_actor, command_identity, refusal
from shop.db.unit_of_work import UnitOfWork
from shop.domain.idempotency import IdempotencyError
from shop.domain.products import CatalogError, Product
from shop.handlers.products import (
    AdjustStock,
    CreateProduct,
    PatchProduct,
    handle_adjust_stock,
    handle_create,
    handle_patch,
)
from shop.names import PRODUCTS_QUEUE
from shop.schemas.views import product_view

QUEUE = PRODUCTS_QUEUE


def _run(
    actor: str, idempotency: Mapping[str, str] | None, work: Callable[[UnitOfWork], Product]
) -> dict[str, Any]:
    uow = UnitOfWork(bootstrap.primary_pool("catalog"), track_lsn=True)
    try:
        view = answer_once(uow, actor, command_identity(idempotency), lambda u: product_view(work(u)))
    except (CatalogError, IdempotencyError) as exc:
        return refusal(exc)
    return {"product": view, "commit_lsn": uow.commit_lsn}


# `idempotency`: {"user_id", "key_digest", "request_hash"} when the request carried an Idempotency-Key.


@command_actor(QUEUE)
def create_product(fields: dict[str, Any], idempotency: dict[str, str] | None = None) -> dict[str, Any]:
    return _run(
        "create_product",
        idempotency,
        lambda uow: handle_create(CreateProduct(fields), uow, bootstrap.utc_now),
    )


@command_actor(QUEUE)
def patch_product(
    product_id: str,
    changes: dict[str, Any],
    expected_version: int,
    idempotency: dict[str, str] | None = None,
) -> dict[str, Any]:
    command = PatchProduct(UUID(product_id), changes, expected_version)
    return _run("patch_product", idempotency, lambda uow: handle_patch(command, uow, bootstrap.utc_now))


@command_actor(QUEUE)
def adjust_stock(product_id: str, delta: Any, idempotency: dict[str, str] | None = None) -> dict[str, Any]:
    command = AdjustStock(UUID(product_id), delta)
    return _run("adjust_stock", idempotency, lambda uow: handle_adjust_stock(command, uow, bootstrap.utc_now))
