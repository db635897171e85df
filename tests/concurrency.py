"""Running calls at the same moment, to show what a race does."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


def run_together(calls: Sequence[Callable[[], T]]) -> list[T]:
    """Runs each call in a thread of its own, all released at once by a barrier; what they returned,
    in the calls' order. A call that raised raises here, once every thread has finished."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], T]) -> T:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as executor:
        futures = [executor.submit(run, call) for call in calls]
    return [future.result() for future in futures]
