"""Kafka in KRaft mode: idempotent produce, group consume with manual commit, topic management."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from shop.streams.topics import TOPICS, TopicSpec, ensure_topics
from tests.integration.kafka_helpers import scratch_topic, value_of


def test_idempotent_produce_and_group_consume_with_manual_commit(settings):
    bootstrap = settings.kafka_bootstrap
    with scratch_topic(bootstrap, partitions=3) as topic:
        producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all"})
        errors: list[KafkaError | None] = []

        def on_delivery(error: KafkaError | None, _message: Message) -> None:
            if error is not None:
                errors.append(error)

        for i in range(30):
            producer.produce(
                topic,
                key=f"order-{i % 5}",
                value=str(i).encode(),
                on_delivery=on_delivery,
            )
        assert producer.flush(20) == 0
        assert errors == []

        group = f"smoke-{uuid.uuid4().hex[:8]}"
        config = {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
        consumer = Consumer(config)
        consumer.subscribe([topic])
        seen: dict[str, list[int]] = {}
        deadline = time.monotonic() + 30
        while sum(map(len, seen.values())) < 20 and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is None or message.error():
                continue
            seen.setdefault(str(message.key()), []).append(int(value_of(message)))
            consumer.commit(message=message, asynchronous=False)
        consumer.close()
        # Per key, values arrive in the order they were produced.
        assert all(values == sorted(values) for values in seen.values())
        handled = sum(map(len, seen.values()))
        assert handled == 20

        # A new member of the same group resumes after the committed offsets: only the rest arrives.
        probe = Consumer(config)
        committed = probe.committed([TopicPartition(topic, p) for p in range(3)], timeout=10)
        probe.close()
        assert sum(tp.offset for tp in committed if tp.offset >= 0) == 20
        consumer = Consumer(config)
        consumer.subscribe([topic])
        rest = 0
        deadline = time.monotonic() + 30
        while rest < 10 and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is not None and not message.error():
                rest += 1
        extra = consumer.poll(1.0)
        consumer.close()
        assert rest == 10
        assert extra is None


def test_project_topics_exist_with_their_partition_counts(settings):
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    assert ensure_topics(admin) == []  # `make` created them; a second run changes nothing
    topics = admin.list_topics(timeout=10).topics
    for spec in TOPICS:
        assert len(topics[spec.name].partitions) == spec.partitions


def test_ensure_topics_grows_a_topic_that_has_too_few_partitions(settings):
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    with scratch_topic(settings.kafka_bootstrap, partitions=1) as topic:
        assert ensure_topics(admin, (TopicSpec(topic, 4, {}),)) == [f"grew {topic}"]
        deadline = time.monotonic() + 10
        while len(admin.list_topics(topic, timeout=5).topics[topic].partitions) != 4:
            assert time.monotonic() < deadline
            time.sleep(0.1)


def test_auto_creation_is_off(settings):
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "message.timeout.ms": 3000})
    errors = []
    producer.produce(f"typo.{uuid.uuid4().hex[:8]}", b"x", on_delivery=lambda e, m: errors.append(e))
    producer.flush(10)
    assert errors
    assert errors[0] is not None
