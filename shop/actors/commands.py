"""What every command actor shares.

A client may be waiting on the answer, so a transient failure (a database restart) is retried
quickly, a few times, and the result is stored. And a command is done once: `answer_once` records
the answer in the command's own transaction, under the command's identity (its message id, or the
client's Idempotency-Key), so a retry after a failure past the commit, a redelivery after a worker
died before its ack, or the client's retry with the same key answers again what was answered,
without doing the work a second time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import dramatiq
from dramatiq.middleware import CurrentMessage

from shop.db import commands as ledger
from shop.db.unit_of_work import UnitOfWork
from shop.domain.idempotency import IdempotencyKeyReused

P = ParamSpec("P")
R = TypeVar("R")

MAX_RETRIES, MIN_BACKOFF_MS, MAX_BACKOFF_MS = 3, 200, 2_000


def command_actor(
    broker: dramatiq.Broker, queue_name: str, store_results: bool = True
) -> Callable[[Callable[P, R]], dramatiq.Actor[P, R]]:
    """Declares a function as a command actor on `broker`, named after the function."""
    options: dict[str, Any] = {
        "max_retries": MAX_RETRIES,
        "min_backoff": MIN_BACKOFF_MS,
        "max_backoff": MAX_BACKOFF_MS,
    }
    if store_results:
        # Only on a broker with the Results middleware, as dramatiq refuses the option elsewhere.
        options["store_results"] = True

    def declare(fn: Callable[P, R]) -> dramatiq.Actor[P, R]:
        actor: dramatiq.Actor[P, R] = dramatiq.actor(broker=broker, queue_name=queue_name, **options)(fn)
        return actor

    return declare


def refusal(exc: Exception) -> dict[str, Any]:
    """A rule the command broke, as the actor's answer: not a failure, so neither retried nor
    dead-lettered. `{"error": {"code", "message"}}`, keyed by the rule's stable API code (every
    domain error has one), never its class name: the gateway answers the HTTP error that code maps
    to (`shop.http.errors.refused`)."""
    return {"error": {"code": getattr(exc, "code", ""), "message": str(exc)}}


# --- done once ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CommandIdentity:
    """What makes two deliveries the same command."""

    command_id: str
    request_hash: str | None = None  # keyed commands: the request the key was first used for


def this_message() -> CommandIdentity:
    """The message being processed: its retries and redeliveries keep its id. (Needs dramatiq's
    CurrentMessage middleware, which every broker of ours has: shop.actors.observability.)"""
    message = CurrentMessage.get_current_message()
    if message is None:
        raise RuntimeError("a command actor ran outside of a dramatiq worker")
    return CommandIdentity(f"message:{message.message_id}")


def command_identity(idempotency: Mapping[str, str] | None) -> CommandIdentity:
    """The client's Idempotency-Key when the request carried one (`{"user_id", "key_digest",
    "request_hash"}`, made by the gateway), else the message."""
    if idempotency is None:
        return this_message()
    return CommandIdentity(
        f"key:{idempotency['user_id']}:{idempotency['key_digest']}", idempotency["request_hash"]
    )


def answer_once(
    uow: UnitOfWork, actor: str, identity: CommandIdentity, work: Callable[[UnitOfWork], Any]
) -> Any:
    """`work(uow)`'s answer, or the answer recorded for `identity` when it committed before.

    The unit of work is opened here; the handler `work` calls enters it again and joins this
    transaction, so its writes and the recorded answer commit together or not at all. A rule the
    command breaks (an exception from `work`) rolls everything back and records nothing: the next
    try decides again. The same key with another request raises `IdempotencyKeyReused`.
    """
    with uow:
        recorded = ledger.recorded_answer(uow.conn, identity.command_id)
        if recorded is not None:
            if recorded.request_hash != identity.request_hash:
                raise IdempotencyKeyReused("this Idempotency-Key was used for a different request")
            return recorded.answer["answer"]
        answer = work(uow)
        ledger.record_answer(uow.conn, identity.command_id, actor, identity.request_hash, {"answer": answer})
    return answer
