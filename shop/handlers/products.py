"""The work of the catalog commands: each appends one event, updates the projection and queues the
Kafka event in the outbox, all in one transaction on the `catalog` primary."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from shop.db import products as db
from shop.db.unit_of_work import UnitOfWork
from shop.domain.clock import Clock
from shop.domain.ids import uuid7
from shop.domain.products import (
    CREATED,
    DuplicateSku,
    Event,
    Product,
    ProductNotFound,
    adjust_stock,
    apply,
    create_product,
    patch_product,
)
from shop.names import PRODUCT_CREATED, PRODUCT_UPDATED
from shop.schemas.events import encode_product_event


@dataclass(frozen=True)
class CreateProduct:
    fields: dict[str, Any]


@dataclass(frozen=True)
class PatchProduct:
    product_id: UUID
    changes: dict[str, Any]
    expected_version: int


@dataclass(frozen=True)
class AdjustStock:
    product_id: UUID
    delta: Any


def record_event(
    uow: UnitOfWork,
    before: Product | None,
    event: Event,
    product_id: UUID,
    now: datetime,
) -> Product:
    version = 1 if before is None else before.version + 1
    after = apply(before, event, product_id, version, now)
    event_id = uuid7()
    db.append_event(uow.conn, event_id, product_id, version, event.type, event.data, now)
    if before is None:
        db.insert_product(uow.conn, after)
    else:
        db.update_product(uow.conn, after)
    topic = PRODUCT_CREATED if event.type == CREATED else PRODUCT_UPDATED
    payload = encode_product_event(
        schema=topic,
        event_id=event_id,
        occurred_at=now,
        product_id=product_id,
        version=version,
        type=event.type,
        snapshot=after.snapshot(),
    )
    uow.publish_event(event_id, topic, str(product_id), payload)
    return after


def handle_create(cmd: CreateProduct, uow: UnitOfWork, clock: Clock) -> Product:
    event = create_product(cmd.fields)
    with uow:
        if db.sku_taken(uow.conn, event.data["sku"]):
            raise DuplicateSku(f"a product with sku {event.data['sku']!r} exists")
        return record_event(uow, None, event, uuid7(), clock())


def _load(uow: UnitOfWork, product_id: UUID) -> Product:
    product = db.product_for_update(uow.conn, product_id)
    if product is None:
        raise ProductNotFound(f"no product {product_id}")
    return product


def handle_patch(cmd: PatchProduct, uow: UnitOfWork, clock: Clock) -> Product:
    with uow:
        product = _load(uow, cmd.product_id)
        event = patch_product(product, cmd.changes, cmd.expected_version)
        if event is None:
            return product  # nothing changed: no event, same version
        return record_event(uow, product, event, cmd.product_id, clock())


def handle_adjust_stock(cmd: AdjustStock, uow: UnitOfWork, clock: Clock) -> Product:
    with uow:
        product = _load(uow, cmd.product_id)
        event = adjust_stock(product, cmd.delta)
        return record_event(uow, product, event, cmd.product_id, clock())
