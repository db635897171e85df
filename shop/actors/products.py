"""Catalog actors (admin commands). A rule the command breaks (duplicate sku, stale version,
stock below reserved) is an answer, not a failure: it is returned, not raised, so it is neither
retried nor dead-lettered. Each command is done once (shop.actors.commands.answer_once), per
message, or per Idempotency-Key when the admin sent one."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import dramatiq

from shop.actors.commands import answer_once, command_actor, command_identity, refusal
from shop.db.unit_of_work import UnitOfWork
from shop.dependencies import Dependencies
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


@dataclass(frozen=True)
class ProductActors:
    create_product: dramatiq.Actor[..., dict[str, Any]]
    patch_product: dramatiq.Actor[..., dict[str, Any]]
    adjust_stock: dramatiq.Actor[..., dict[str, Any]]


def declare(broker: dramatiq.Broker, needs: Dependencies) -> ProductActors:
    def run(
        actor: str, idempotency: Mapping[str, str] | None, work: Callable[[UnitOfWork], Product]
    ) -> dict[str, Any]:
        uow = needs.unit_of_work("catalog", track_lsn=True)
        try:
            view = answer_once(uow, actor, command_identity(idempotency), lambda u: product_view(work(u)))
        except (CatalogError, IdempotencyError) as exc:
            return refusal(exc)
        return {"product": view, "commit_lsn": uow.commit_lsn}

    # `idempotency`: {"user_id", "key_digest", "request_hash"} when the request carried an Idempotency-Key.

    def create_product(fields: dict[str, Any], idempotency: dict[str, str] | None = None) -> dict[str, Any]:
        return run(
            "create_product", idempotency, lambda uow: handle_create(CreateProduct(fields), uow, needs.clock)
        )

    def patch_product(
        product_id: str,
        changes: dict[str, Any],
        expected_version: int,
        idempotency: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        command = PatchProduct(UUID(product_id), changes, expected_version)
        return run("patch_product", idempotency, lambda uow: handle_patch(command, uow, needs.clock))

    def adjust_stock(
        product_id: str, delta: Any, idempotency: dict[str, str] | None = None
    ) -> dict[str, Any]:
        command = AdjustStock(UUID(product_id), delta)
        return run("adjust_stock", idempotency, lambda uow: handle_adjust_stock(command, uow, needs.clock))

    actor = command_actor(broker, QUEUE)
    return ProductActors(actor(create_product), actor(patch_product), actor(adjust_stock))
