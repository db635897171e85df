"""`shop run streams`: the Kafka stream agents."""

from __future__ import annotations

from shop.bootstrap import build_dependencies, build_readiness, kafka_config
from shop.http.app import create_base_app
from shop.processes.host import run_service
from shop.settings import Settings
from shop.streams.agents import stream_agents
from shop.streams.runner import StreamRunner

CONSUMER_GROUP = "shop-streams"


def run_streams(settings: Settings, port: int | None = None) -> int:
    agents, batch_agents = stream_agents(build_dependencies(settings))
    runner = StreamRunner(
        consumer_config=kafka_config(
            settings,
            **{
                "group.id": CONSUMER_GROUP,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
            },
        ),
        producer_config=kafka_config(settings, acks="all"),
        agents=agents,
        batch_agents=batch_agents,
        lanes=settings.stream_threads,
    )
    readiness, resources = build_readiness(settings, ["postgres_primary", "kafka"])
    app = create_base_app(readiness, settings.max_body_bytes)
    return run_service("streams", runner, app, settings.host, port or settings.streams_port, resources)
