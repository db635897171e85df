"""`shop run workers`: dramatiq actors consuming their RabbitMQ queues."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import dramatiq

from shop.bootstrap import build_broker, build_dependencies, build_readiness
from shop.http.app import create_base_app
from shop.names import TIMER_QUEUE
from shop.processes.host import Service, run_service
from shop.processes.sweeper import TimerSweeper
from shop.settings import Settings


class DramatiqWorkers:
    """A dramatiq worker pool inside this process. Messages are acked by dramatiq only after the
    actor returns, i.e. after the actor's own transaction committed."""

    def __init__(self, broker: dramatiq.Broker, queues: set[str] | None, threads: int) -> None:
        self._worker = dramatiq.Worker(broker, queues=queues, worker_threads=threads)

    def start(self) -> None:
        self._worker.start()

    def stop(self) -> None:
        self._worker.stop()

    def alive(self) -> bool:
        return all(t.is_alive() for t in self._worker.workers)


class Together:
    """Several services as one: started in order, stopped in reverse, alive while all are."""

    def __init__(self, services: Sequence[Service]) -> None:
        self._services = list(services)

    def start(self) -> None:
        for service in self._services:
            service.start()

    def stop(self) -> None:
        for service in reversed(self._services):
            service.stop()

    def alive(self) -> bool:
        return all(service.alive() for service in self._services)


def run_workers(settings: Settings, queues: list[str], threads: int, port: int | None = None) -> int:
    needs = build_dependencies(settings)
    broker, _ = build_broker(settings, needs)
    unknown = set(queues) - broker.get_declared_queues()
    if unknown:
        raise SystemExit(f"shop run workers: no actor consumes queue(s) {', '.join(sorted(unknown))}")
    readiness, resources = build_readiness(settings, ["postgres_primary", "redis", "rabbitmq"])
    app = create_base_app(readiness, settings.max_body_bytes)
    services: list[Service] = [DramatiqWorkers(broker, set(queues) or None, threads)]
    if not queues or TIMER_QUEUE in queues:
        # Where timer triggers are consumed, the sweeper makes up for lost ones.
        services.append(
            TimerSweeper(
                lambda: needs.unit_of_work("orders"),
                needs.clock,
                timedelta(seconds=settings.orders.timer_grace),
                settings.orders.sweep_interval,
            )
        )
    return run_service(
        "workers", Together(services), app, settings.host, port or settings.workers_port, resources
    )
