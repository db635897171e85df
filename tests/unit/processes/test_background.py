"""The threads the relay, the sweeper and the stream runner run in."""

from __future__ import annotations

import threading

from shop.processes.background import BackgroundThreads


class Loops(BackgroundThreads):
    def __init__(self) -> None:
        self.runs: list[str] = []
        self.finish_early = threading.Event()
        super().__init__({"waits": self._wait, "ends": self._end_early})

    def _wait(self) -> None:
        self.runs.append(threading.current_thread().name)
        self._stopping.wait()

    def _end_early(self) -> None:
        self.finish_early.wait()  # a loop that dies before it is stopped


def test_start_runs_every_loop_on_its_named_daemon_thread_and_stop_joins_them():
    loops = Loops()
    assert all(thread.daemon for thread in loops._threads)
    loops.start()
    assert loops.alive()
    loops.finish_early.set()
    loops._threads[1].join(5)
    assert not loops.alive(), "one loop gone is the whole thing unhealthy"
    loops.stop()
    assert loops.runs == ["waits"]
    assert not any(thread.is_alive() for thread in loops._threads)
