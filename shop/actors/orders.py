"""Order actors. A broken rule (unknown product, reused key) is an answer, not a failure.

Placing is done once per (customer, Idempotency-Key) by its idempotency record; paying and
cancelling once per message (shop.actors.commands.answer_once), so a retry after its commit answers
what it answered the first time instead of refusing a transition it made itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import dramatiq

from shop.actors.commands import answer_once, command_actor, refusal, this_message
from shop.db import orders as db
from shop.db.unit_of_work import UnitOfWork
from shop.dependencies import Dependencies
from shop.domain.idempotency import IdempotencyError
from shop.domain.orders import OrderLine, OrderRuleError
from shop.handlers.orders import (
    CancelOrder,
    PayOrder,
    PlaceOrder,
    handle_cancel,
    handle_pay,
    handle_place_order,
)
from shop.names import ORDERS_QUEUE
from shop.schemas.views import order_view

QUEUE = ORDERS_QUEUE


@dataclass(frozen=True)
class OrderActors:
    place_order: dramatiq.Actor[..., dict[str, Any]]
    pay_order: dramatiq.Actor[..., dict[str, Any]]
    cancel_order: dramatiq.Actor[..., dict[str, Any]]


def declare(broker: dramatiq.Broker, needs: Dependencies) -> OrderActors:
    def place_order(
        order_id: str,
        user_id: str,
        idempotency_key: str,
        request_hash: str,
        lines: list[dict[str, Any]],
        customer_email: str | None = None,
        placement_id: str | None = None,
    ) -> dict[str, Any]:
        command = PlaceOrder(
            UUID(order_id),
            UUID(user_id),
            idempotency_key,
            request_hash,
            [OrderLine(UUID(line["product_id"]), int(line["quantity"])) for line in lines],
            customer_email,
            UUID(placement_id) if placement_id else None,
        )
        try:
            placed = handle_place_order(
                command,
                lambda: needs.unit_of_work("orders", track_lsn=True),
                needs.clock,
                needs.timer_policy,
                needs.unpaid_limits,
            )
        except (OrderRuleError, IdempotencyError) as exc:
            return refusal(exc)
        found = placed.order
        if found is None:  # a replay: the order as it is now. (Should this fail, the retry replays again.)
            with needs.primary_pool("orders").connection() as conn:
                found = db.order(conn, placed.order_id)
        assert found is not None
        return {"order": order_view(*found), "created": placed.created, "commit_lsn": placed.commit_lsn}

    def transition(actor: str, order_id: UUID, work: Callable[[UnitOfWork], None]) -> dict[str, Any]:
        """Runs `work` once per message and answers with the order as it committed."""

        def answer(uow: UnitOfWork) -> dict[str, Any]:
            work(uow)
            found = db.order(uow.conn, order_id)  # in the same transaction: its own writes
            assert found is not None
            return order_view(*found)

        uow = needs.unit_of_work("orders", track_lsn=True)
        try:
            view = answer_once(uow, actor, this_message(), answer)
        except OrderRuleError as exc:
            return refusal(exc)
        return {"order": view, "commit_lsn": uow.commit_lsn}

    def pay_order(order_id: str, user_id: str, payment_reference: str) -> dict[str, Any]:
        command = PayOrder(UUID(order_id), UUID(user_id), payment_reference)
        return transition("pay_order", command.order_id, lambda uow: handle_pay(command, uow, needs.clock))

    def cancel_order(order_id: str, user_id: str) -> dict[str, Any]:
        command = CancelOrder(UUID(order_id), UUID(user_id))
        return transition(
            "cancel_order", command.order_id, lambda uow: handle_cancel(command, uow, needs.clock)
        )

    actor = command_actor(broker, QUEUE)
    return OrderActors(actor(place_order), actor(pay_order), actor(cancel_order))
