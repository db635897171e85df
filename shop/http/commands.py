"""Sending commands to actors from the event loop, and waiting for their answers, bounded."""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import dramatiq
import redis.exceptions
from dramatiq.results import ResultFailure, ResultTimeout
from prometheus_client import Histogram

from shop.http.errors import ApiError

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
        durable in RabbitMQ). A command that failed for good is a 503."""
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
            return answer
        finally:
            ACTOR_WAIT.labels(actor.actor_name, "ask", outcome).observe(time.perf_counter() - started)


def raise_refusal(
    answer: dict[str, Any], known: Mapping[str, type[Exception]], default: type[Exception]
) -> None:
    """Raises the typed error an actor's answer carries (see `shop.actors.commands.refusal`), if any."""
    error = answer.get("error")
    if error is not None:
        raise known.get(error["type"], default)(error["message"])
