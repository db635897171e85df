"""The stream-agent loop against the real broker: handled, dead-lettered, committed, retried."""

from __future__ import annotations

import json
import time
import uuid

from confluent_kafka import Consumer, Message, Producer, TopicPartition

from shop.streams.runner import PoisonMessage, StreamRunner
from tests.integration.kafka_helpers import consume, headers_of, scratch_topic, value_of


def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for value in values:
        producer.produce(topic, key=b"k", value=value)
    assert producer.flush(20) == 0


def _committed(bootstrap: str, group: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        (tp,) = consumer.committed([TopicPartition(topic, 0)], timeout=10)
        return tp.offset
    finally:
        consumer.close()


def test_agents_handle_in_order_dead_letter_poison_and_commit_after_handling(settings):
    bootstrap = settings.kafka_bootstrap
    with scratch_topic(bootstrap, partitions=1) as topic, scratch_topic(bootstrap, 1, "dlt") as dead_letter:
        handled: list[int] = []
        failures = {"left": 2}  # the second message fails twice (transient), then succeeds

        def agent(message: Message) -> None:
            try:
                body = json.loads(value_of(message))
            except ValueError as exc:
                raise PoisonMessage(f"not JSON: {exc}") from exc
            if body["n"] == 2 and failures["left"]:
                failures["left"] -= 1
                raise ConnectionError("database briefly away")
            handled.append(body["n"])

        _produce(bootstrap, topic, [b'{"n": 1}', b'{"n": 2}', b"{not json", b'{"n": 3}'])
        group = f"test-{uuid.uuid4().hex[:8]}"
        runner = StreamRunner(
            {"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest"},
            {"bootstrap.servers": bootstrap},
            {topic: agent},
            dead_letter_topic=dead_letter,
            max_backoff=0.2,
        )
        runner.start()
        deadline = time.monotonic() + 30
        while len(handled) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        runner.stop()

        assert handled == [1, 2, 3]
        assert not runner.alive()
        (dead,) = consume(bootstrap, dead_letter, 1)
        assert dead.value() == b"{not json"
        headers = headers_of(dead)
        assert headers["x-original-topic"] == topic.encode()
        assert headers["x-original-offset"] == b"2"
        assert b"not JSON" in headers["x-dead-letter-reason"]
        assert _committed(bootstrap, group, topic) == 4
