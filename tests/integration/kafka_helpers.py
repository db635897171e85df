"""Small helpers for Kafka tests: throwaway topics and draining a topic."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from confluent_kafka import Consumer, Message
from confluent_kafka.admin import AdminClient

from shop.streams.topics import TopicSpec, ensure_topics


@contextmanager
def scratch_topic(bootstrap: str, partitions: int = 3, prefix: str = "test") -> Iterator[str]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    name = f"{prefix}.{uuid.uuid4().hex[:12]}"
    ensure_topics(admin, (TopicSpec(name, partitions, {}),))
    try:
        yield name
    finally:
        admin.delete_topics([name], operation_timeout=10)


def consume(
    bootstrap: str, topic: str, count: int, group: str | None = None, timeout: float = 20
) -> list[Message]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group or f"test-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    messages: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        while len(messages) < count and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                messages.append(message)
    finally:
        consumer.close()
    return messages


def headers_of(message: Message) -> dict[str, bytes]:
    raw = message.headers() or []
    pairs = raw.items() if isinstance(raw, dict) else raw
    return {k: v if isinstance(v, bytes) else (v or "").encode() for k, v in pairs}


def value_of(message: Message) -> bytes:
    value = message.value()
    assert value is not None
    return value
