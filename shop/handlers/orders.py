"""Placing an order: idempotent per (user, Idempotency-Key), priced from the order side's copy of
product prices, written with its `order.created` event in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import psycopg

from shop.db import orders as db
from shop.db.unit_of_work import UnitOfWork
from shop.domain.ids import uuid7
from shop.domain.orders import OrderLine, OrderRuleError, price_lines
from shop.schemas.orders import ORDER_CREATED, encode_order_created

Clock = Callable[[], datetime]


class IdempotencyKeyReused(OrderRuleError):
    code = "idempotency_key_reused"


@dataclass(frozen=True)
class PlaceOrder:
    order_id: UUID  # chosen by the gateway, so it can point at the order before it exists
    user_id: UUID
    idempotency_key: str
    request_hash: str
    lines: list[OrderLine]
    trace_headers: dict[str, str]


@dataclass(frozen=True)
class Placed:
    order_id: UUID
    created: bool  # False: the same request again; the first one's order


def _replay(uow: UnitOfWork, cmd: PlaceOrder) -> Placed | None:
    record = db.idempotency_record(uow.conn, cmd.user_id, cmd.idempotency_key)
    if record is None:
        return None
    if record.request_hash != cmd.request_hash:
        raise IdempotencyKeyReused("this Idempotency-Key was used for a different request")
    return Placed(record.order_id, created=False)


def handle_place_order(
    cmd: PlaceOrder, uow_factory: Callable[[], UnitOfWork], clock: Clock, ttl: timedelta
) -> Placed:
    try:
        with uow_factory() as uow:
            replayed = _replay(uow, cmd)
            if replayed is not None:
                return replayed
            prices = db.prices_of(uow.conn, [line.product_id for line in cmd.lines])
            priced, total, currency = price_lines(cmd.lines, prices)
            now = clock()
            db.insert_order(uow.conn, cmd.order_id, cmd.user_id, priced, total, currency, now, now + ttl)
            # The primary key of this row is what stops a second order when Redis forgot the lock.
            db.insert_idempotency_record(
                uow.conn, cmd.user_id, cmd.idempotency_key, cmd.request_hash, cmd.order_id
            )
            event_id = uuid7()
            payload = encode_order_created(event_id, now, cmd.order_id, cmd.user_id, priced, total, currency)
            uow.publish_event(event_id, ORDER_CREATED, str(cmd.order_id), payload, cmd.trace_headers)
            return Placed(cmd.order_id, created=True)
    except psycopg.errors.UniqueViolation:
        # A concurrent twin committed first: answer with its order.
        with uow_factory() as uow:
            replayed = _replay(uow, cmd)
        if replayed is None:
            raise
        return replayed
