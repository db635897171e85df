"""`shop run workers`: dramatiq actors consuming their RabbitMQ queues."""

from __future__ import annotations

import dramatiq

from shop import bootstrap
from shop.bootstrap import build_readiness
from shop.http.app import create_base_app
from shop.processes.host import run_service
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


def run_workers(settings: Settings, queues: list[str], threads: int, port: int | None = None) -> int:
    broker = bootstrap.message_broker()
    unknown = set(queues) - broker.get_declared_queues()
    if unknown:
        raise SystemExit(f"shop run workers: no actor consumes queue(s) {', '.join(sorted(unknown))}")
    readiness, resources = build_readiness(settings, ["postgres_primary", "redis", "rabbitmq"])
    app = create_base_app(readiness, settings.max_body_bytes)
    workers = DramatiqWorkers(broker, set(queues) or None, threads)
    return run_service("workers", workers, app, settings.host, port or settings.workers_port, resources)
