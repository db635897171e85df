"""`shop run relay`: the outbox relay of every database."""

from __future__ import annotations

from shop.bootstrap import build_readiness, kafka_config
from shop.http.app import create_base_app
from shop.processes.host import run_service
from shop.relay import OutboxRelay
from shop.settings import Settings


def run_relay(settings: Settings, port: int | None = None) -> int:
    relay = OutboxRelay(
        {context: db.primary_url for context, db in settings.databases.items()},
        kafka_config(settings),
        rabbitmq_url=settings.rabbitmq_url,
        prepared_statements=settings.pg_prepared_statements,
        retention=settings.outbox_retention,
    )
    readiness, resources = build_readiness(settings, ["postgres_primary", "kafka", "rabbitmq"])
    app = create_base_app(readiness, settings.max_body_bytes)
    return run_service("relay", relay, app, settings.host, port or settings.relay_port, resources)
