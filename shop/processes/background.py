"""What the relay, the timer sweeper and the stream runner share: loops on daemon threads that run
until `stop`, and the process's health asking whether they still do."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping


class BackgroundThreads:
    """Owns the threads and the stop event. A subclass hands its loops (thread name -> function) to
    `__init__`; each loop returns once `_stopping` is set, and waits on it instead of sleeping."""

    def __init__(self, loops: Mapping[str, Callable[[], None]]) -> None:
        self._stopping = threading.Event()
        self._threads = [
            threading.Thread(target=loop, name=name, daemon=True) for name, loop in loops.items()
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Returns once every loop has: each finishes its work at hand and closes what it opened."""
        self._stopping.set()
        for thread in self._threads:
            thread.join()

    def alive(self) -> bool:
        return all(thread.is_alive() for thread in self._threads)
