"""The options every command actor shares: a client may be waiting on the answer, so a transient
failure (a database restart) is retried quickly, a few times, and the result is stored."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import dramatiq

P = ParamSpec("P")
R = TypeVar("R")

MAX_RETRIES, MIN_BACKOFF_MS, MAX_BACKOFF_MS = 3, 200, 2_000


def command_actor(
    queue_name: str, store_results: bool = True
) -> Callable[[Callable[P, R]], dramatiq.Actor[P, R]]:
    options: dict[str, Any] = {
        "max_retries": MAX_RETRIES,
        "min_backoff": MIN_BACKOFF_MS,
        "max_backoff": MAX_BACKOFF_MS,
    }
    if store_results:
        options["store_results"] = True

    def declare(fn: Callable[P, R]) -> dramatiq.Actor[P, R]:
        actor: dramatiq.Actor[P, R] = dramatiq.actor(queue_name=queue_name, **options)(fn)
        return actor

    return declare


def refusal(exc: Exception) -> dict[str, Any]:
    """A rule the command broke, as the actor's answer: not a failure, so neither retried nor
    dead-lettered. The gateway turns it back into the typed error (`shop.http.commands`)."""
    return {"error": {"type": type(exc).__name__, "code": getattr(exc, "code", ""), "message": str(exc)}}
