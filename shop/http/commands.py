"""Sending commands to actors from the event loop, and waiting for their answers, bounded.

An actor answers a command with its result, or with the rule the command broke:
`{"error": {"code", "message"}}` (`shop.actors.commands.refusal`), keyed by the rule's stable code.
`CommandBus.ask` raises such a refusal as the API's error for that code (`shop.http.errors`), so
no route reads it; `ContextCommands` adds, for a context's writes, the Idempotency-Key's lock and
the write's position for the caller's next reads; `answered` is the 503 of an answer not come yet.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

import dramatiq
import redis.exceptions
from dramatiq.results import ResultFailure, ResultTimeout
from prometheus_client import Histogram

from shop.http.errors import ApiError, refused
from shop.http.freshness import WriteFreshness
from shop.http.idempotency import InFlightLocks, KeyedRequest

T = TypeVar("T")

ACTOR_WAIT = Histogram(
    "shop_gateway_actor_wait_seconds",
    "Time the gateway spent on an actor: publishing with confirm (send), or until its answer (ask)",
    ["actor", "kind", "outcome"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


class CommandBus:
    def __init__(self, executor: ThreadPoolExecutor, timeout: float) -> None:
        self.executor = executor
        self._timeout_ms = int(timeout * 1000)

    async def blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Runs blocking work (pika with confirms, Argon2, psycopg) off the event loop, in the
        caller's context: the request's span is the parent of what the thread does and sends."""
        work = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(self.executor, work.run, fn, *args)

    async def send(self, actor: dramatiq.Actor[..., Any], **kwargs: Any) -> dramatiq.Message[Any]:
        """Returns once RabbitMQ confirmed the message."""
        started = time.perf_counter()
        outcome = "error"
        try:
            message = await self.blocking(lambda: actor.send(**kwargs))
            outcome = "sent"
            return message
        finally:
            ACTOR_WAIT.labels(actor.actor_name, "send", outcome).observe(time.perf_counter() - started)

    async def ask(self, actor: dramatiq.Actor[..., Any], **kwargs: Any) -> Any | None:
        """Sends and waits for the answer; None when it is late (the command still runs: it is
        durable in RabbitMQ). A refusal is raised as the API's error for its code; a command that
        failed for good is a 503."""
        started = time.perf_counter()
        outcome = "error"
        try:
            message = await self.send(actor, **kwargs)
            try:
                answer = await self.blocking(lambda: message.get_result(block=True, timeout=self._timeout_ms))
            except (ResultTimeout, redis.exceptions.RedisError):
                # Late, or its answer lost with Redis: the command is durable in RabbitMQ and runs.
                outcome = "late"
                return None
            except ResultFailure:
                outcome = "failed"
                raise ApiError(503, "command_failed", "the command failed; try again") from None
            outcome = "answered"
        finally:
            ACTOR_WAIT.labels(actor.actor_name, "ask", outcome).observe(time.perf_counter() - started)
        error = answer.get("error") if isinstance(answer, dict) else None
        if error is not None:
            raise refused(error["code"], error["message"])
        return answer


def answered(answer: T | None, late: str) -> T:
    """`answer`, or when the actor has not answered in time, the 503 (`late` its message) that
    tells the client to retry: the command is durable and runs, so the retry meets its outcome."""
    if answer is None:
        raise ApiError(503, "command_timeout", late, {"Retry-After": "1"})
    return answer


@dataclass(frozen=True)
class ContextCommands:
    """One context's commands (the catalog's, the orders'), as its routes ask them for a caller:
    with an Idempotency-Key, one at a time under the key's lock; and the position the actor
    committed at remembered, so that the caller's next reads see the write (read-your-writes)."""

    bus: CommandBus
    locks: InFlightLocks
    freshness: WriteFreshness

    async def ask(
        self, caller: UUID, actor: dramatiq.Actor[..., Any], keyed: KeyedRequest | None, /, **kwargs: Any
    ) -> dict[str, Any] | None:
        """`actor`'s answer to `kwargs` for `caller` (None when it is late, see `CommandBus.ask`);
        under `keyed`'s lock when the request carries an Idempotency-Key."""

        async def ask() -> dict[str, Any] | None:
            answer: dict[str, Any] | None = await self.bus.ask(actor, **kwargs)
            return answer

        answer = await (ask() if keyed is None else self.locks.ask_once(keyed, ask))
        if answer is not None and answer.get("commit_lsn"):
            await self.freshness.remember(caller, answer["commit_lsn"])
        return answer
