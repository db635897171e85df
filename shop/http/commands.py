"""Sending commands to actors from the event loop, and waiting for their answers, bounded."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import dramatiq
from dramatiq.results import ResultFailure, ResultTimeout

from shop.http.errors import ApiError

T = TypeVar("T")


class CommandBus:
    def __init__(self, executor: ThreadPoolExecutor, timeout: float) -> None:
        self.executor = executor
        self._timeout_ms = int(timeout * 1000)

    async def blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Runs blocking work (pika with confirms, Argon2, psycopg) off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def send(self, actor: dramatiq.Actor[..., Any], **kwargs: Any) -> dramatiq.Message[Any]:
        """Returns once RabbitMQ confirmed the message."""
        return await self.blocking(lambda: actor.send(**kwargs))

    async def ask(self, actor: dramatiq.Actor[..., Any], **kwargs: Any) -> Any | None:
        """Sends and waits for the answer; None when it is late (the command still runs: it is
        durable in RabbitMQ). A command that failed for good is a 503."""
        message = await self.send(actor, **kwargs)
        try:
            return await self.blocking(lambda: message.get_result(block=True, timeout=self._timeout_ms))
        except ResultTimeout:
            return None
        except ResultFailure:
            raise ApiError(503, "command_failed", "the command failed; try again") from None


def raise_refusal(
    answer: dict[str, Any], known: Mapping[str, type[Exception]], default: type[Exception]
) -> None:
    """Raises the typed error an actor's answer carries (see `shop.actors.commands.refusal`), if any."""
    error = answer.get("error")
    if error is not None:
        raise known.get(error["type"], default)(error["message"])
