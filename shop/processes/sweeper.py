"""The timer sweeper: fires order timers whose trigger message never came (lost, or purged).

It runs beside the workers that consume the `timers` queue, one thread per process. Any number may
run at once: each claims timers with SKIP LOCKED, one transaction per timer (shop.handlers.timers).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from prometheus_client import Gauge

from shop.db.timers import pending_by_kind
from shop.db.unit_of_work import UnitOfWork
from shop.domain.clock import Clock
from shop.handlers.timers import sweep
from shop.processes.background import BackgroundThreads

log = logging.getLogger("shop.timers.sweeper")

LAST_SWEEP = Gauge("shop_timer_sweeper_last_run_timestamp_seconds", "When the sweeper last finished a sweep")
PENDING = Gauge("shop_timers_pending", "Order timers not fired yet (measured after each sweep)", ["kind"])
OVERDUE = Gauge(
    "shop_timers_overdue",
    "Order timers due for longer than the grace and still not fired: the sweeper is behind, or they"
    " keep failing",
    ["kind"],
)


class TimerSweeper(BackgroundThreads):
    def __init__(
        self,
        uow_factory: Callable[[], UnitOfWork],
        clock: Clock,
        grace: timedelta,
        interval: float,
        batch: int = 500,
    ) -> None:
        self._uow_factory = uow_factory
        self._clock = clock
        self._grace = grace
        self._interval = interval
        self._batch = batch
        self._kinds_seen: set[str] = set()
        super().__init__({"timer-sweeper": self._run})

    def _measure(self) -> None:
        with self._uow_factory() as uow:
            counts = pending_by_kind(uow.conn, self._clock() - self._grace)
        self._kinds_seen.update(counts)  # a kind that drops to none must read 0, not its last count
        for kind in self._kinds_seen:
            pending, overdue = counts.get(kind, (0, 0))
            PENDING.labels(kind).set(pending)
            OVERDUE.labels(kind).set(overdue)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                fired = sweep(self._uow_factory, self._clock, self._grace, self._batch)
                LAST_SWEEP.set_to_current_time()
                self._measure()
                if fired:
                    log.info("sweeper fired %d overdue timer(s)", fired)
                if fired == self._batch:
                    continue  # a full batch: there may be more overdue, go on at once
            except Exception:  # the database away: try again next interval, never die
                log.exception("timer sweep failed; retrying in %.1fs", self._interval)
            self._stopping.wait(self._interval)
