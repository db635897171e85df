"""The project's Kafka topics, created by the project with explicit partition counts.

Auto-creation is off on the brokers: a topic born from a typo with the broker's default partition
count would silently break per-key ordering assumptions. Keys are aggregate ids, so the partition
count bounds how many consumers of one group can work in parallel.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewPartitions, NewTopic

from shop import names

log = logging.getLogger("shop.topics")


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: Mapping[str, str]


_EVENTS = {"cleanup.policy": "delete", "retention.ms": str(7 * 24 * 3600 * 1000)}

TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(names.PRODUCT_CREATED, 6, _EVENTS),
    TopicSpec(names.PRODUCT_UPDATED, 6, _EVENTS),
    TopicSpec(names.ORDER_CREATED, 6, _EVENTS),
    TopicSpec(names.ORDER_CANCELLED, 6, _EVENTS),
    TopicSpec(names.ORDER_PAID, 6, _EVENTS),
    TopicSpec(names.ORDER_COMPLETED, 6, _EVENTS),
    TopicSpec(names.STOCK_RESERVED, 6, _EVENTS),
    TopicSpec(names.STOCK_REJECTED, 6, _EVENTS),
    # Events a consumer could not parse or does not understand, kept for a person to look at.
    TopicSpec(
        names.DEAD_LETTER_TOPIC, 1, {"cleanup.policy": "delete", "retention.ms": str(30 * 24 * 3600 * 1000)}
    ),
)


def topic_config(spec: TopicSpec, replication_factor: int) -> dict[str, str]:
    """The spec's settings, and on a replicated cluster `min.insync.replicas` one below the
    replication factor: with the producers' acks=all a write then survives a broker's loss, and
    one broker down (a rolling restart) still leaves the topic writable."""
    config = dict(spec.config)
    if replication_factor > 1:
        config["min.insync.replicas"] = str(replication_factor - 1)
    return config


def ensure_topics(
    admin: AdminClient,
    topics: tuple[TopicSpec, ...] = TOPICS,
    replication_factor: int = 1,
    timeout: float = 30.0,
) -> list[str]:
    """Creates missing topics and grows any with fewer partitions than specified (Kafka cannot
    shrink a topic). Returns what it changed; safe to run again."""
    existing = admin.list_topics(timeout=timeout).topics
    changes: list[str] = []
    missing = [t for t in topics if t.name not in existing]
    if missing:
        futures = admin.create_topics(
            [
                NewTopic(t.name, t.partitions, replication_factor, config=topic_config(t, replication_factor))
                for t in missing
            ],
            operation_timeout=timeout,
            request_timeout=timeout,
        )
        for name, future in futures.items():
            try:
                future.result()
                changes.append(f"created {name}")
            except KafkaException as exc:
                # Another process created it in between: that is the outcome we wanted.
                if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                    raise
    grow = [
        NewPartitions(t.name, t.partitions)
        for t in topics
        if t.name in existing and len(existing[t.name].partitions) < t.partitions
    ]
    if grow:
        for name, future in admin.create_partitions(grow, request_timeout=timeout).items():
            future.result()
            changes.append(f"grew {name}")
    for change in changes:
        log.info("kafka topics: %s", change)
    return changes
