"""The stream-agent loop against the real broker: handled, dead-lettered, committed, retried."""

from __future__ import annotations

import json
import threading
import time
import uuid

from confluent_kafka import Consumer, Message, Producer, TopicPartition
from prometheus_client import REGISTRY

from shop.streams import runner as runner_module
from shop.streams.runner import PoisonMessage, StreamRunner, lane_index
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
        # Counted where /metrics shows it.
        assert (
            REGISTRY.get_sample_value(
                "shop_stream_records_total", {"topic": topic, "outcome": "dead_lettered"}
            )
            == 1
        )
        assert (
            REGISTRY.get_sample_value("shop_stream_records_total", {"topic": topic, "outcome": "processed"})
            == 3
        )


def _runner(
    bootstrap: str,
    group: str,
    topic: str,
    agent,
    lanes: int,
    dead_letter: str = "dead-letter",
    batch_agent=None,
) -> StreamRunner:
    return StreamRunner(
        {"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest"},
        {"bootstrap.servers": bootstrap},
        {topic: agent},
        dead_letter_topic=dead_letter,
        max_backoff=0.2,
        lanes=lanes,
        batch_agents={topic: batch_agent} if batch_agent else None,
    )


def _produce_to(bootstrap: str, topic: str, records: list[tuple[int, bytes]]) -> None:
    """(partition, value) in order."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for partition, value in records:
        producer.produce(topic, value=value, partition=partition)
    assert producer.flush(20) == 0


def _wait(condition, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


def test_a_stuck_partition_does_not_hold_up_the_others_and_each_keeps_its_order(settings):
    bootstrap = settings.kafka_bootstrap
    with scratch_topic(bootstrap, partitions=2) as topic:
        lanes = next(n for n in range(2, 9) if lane_index(topic, 0, n) != lane_index(topic, 1, n))
        release = threading.Event()
        handled: dict[int, list[int]] = {0: [], 1: []}

        def agent(message: Message) -> None:
            partition, n = json.loads(value_of(message))
            if partition == 0:
                release.wait(30)  # partition 0's lane is stuck on its first record
            handled[partition].append(n)

        _produce_to(bootstrap, topic, [(p, json.dumps([p, n]).encode()) for n in range(20) for p in (0, 1)])
        group = f"test-{uuid.uuid4().hex[:8]}"
        runner = _runner(bootstrap, group, topic, agent, lanes)
        runner.start()
        try:
            assert _wait(lambda: len(handled[1]) == 20), handled
            assert handled[0] == []  # still stuck, while partition 1 went all the way
            release.set()
            assert _wait(lambda: len(handled[0]) == 20), handled
        finally:
            release.set()
            runner.stop()
        assert handled == {0: list(range(20)), 1: list(range(20))}
        assert _committed_all(bootstrap, group, topic, 2) == [20, 20]


def _committed_all(bootstrap: str, group: str, topic: str, partitions: int) -> list[int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        found = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return [tp.offset for tp in sorted(found, key=lambda tp: tp.partition)]
    finally:
        consumer.close()


def test_a_rebalance_loses_nothing_and_each_partition_stays_in_order(settings, monkeypatch):
    """Two processes' runners share a group while records keep coming; one leaves half way. Every
    record is handled, each partition's records in order by whoever handled them, and the group's
    offsets end at the end of every partition."""
    bootstrap = settings.kafka_bootstrap
    monkeypatch.setattr(runner_module, "MAX_IN_FLIGHT", 8)  # pausing and resuming happen too
    partitions, per_partition = 4, 60
    with scratch_topic(bootstrap, partitions=partitions) as topic:
        seen: list[tuple[str, int, int]] = []  # (runner, partition, n)
        lock = threading.Lock()

        def agent_of(name: str):
            def agent(message: Message) -> None:
                partition, n = json.loads(value_of(message))
                time.sleep(0.002)
                with lock:
                    seen.append((name, partition, n))

            return agent

        group = f"test-{uuid.uuid4().hex[:8]}"
        first = _runner(bootstrap, group, topic, agent_of("first"), lanes=3)
        second = _runner(bootstrap, group, topic, agent_of("second"), lanes=2)
        first.start()
        records = [(p, json.dumps([p, n]).encode()) for n in range(per_partition) for p in range(partitions)]
        third = len(records) // 3
        _produce_to(bootstrap, topic, records[:third])
        second.start()  # a rebalance while the first is busy
        _produce_to(bootstrap, topic, records[third : 2 * third])
        assert _wait(lambda: len(seen) >= third)
        first.stop()  # another rebalance: the second takes every partition
        _produce_to(bootstrap, topic, records[2 * third :])
        try:
            assert _wait(
                lambda: (
                    {(p, n) for _, p, n in seen}
                    == {(p, n) for n in range(per_partition) for p in range(partitions)}
                )
            )
        finally:
            second.stop()
        for partition in range(partitions):
            for name in ("first", "second"):
                mine = [n for who, p, n in seen if who == name and p == partition]
                assert mine == sorted(mine), (name, partition, mine)
        assert _committed_all(bootstrap, group, topic, partitions) == [per_partition] * partitions
        # Redelivery after a rebalance is allowed (the inboxes turn it away) but stays small.
        assert len(seen) - len(records) <= len(records) // 4


def test_records_piled_up_in_a_lane_go_to_the_batch_agent_together_and_a_failed_batch_in_halves(settings):
    """A batch is all or nothing: the one with a poison record is rolled back and tried again in
    halves, down to the poison record alone, which is dead-lettered; every record is handled once,
    in order, and the offsets end past the last."""
    bootstrap = settings.kafka_bootstrap
    with scratch_topic(bootstrap, partitions=1) as topic, scratch_topic(bootstrap, 1, "dlt") as dead_letter:
        handled: list[int] = []
        batch_sizes: list[int] = []
        let_go = time.monotonic() + 2  # the first record waits: the others pile up behind it

        def parse(message: Message) -> int:
            try:
                return int(json.loads(value_of(message))["n"])
            except ValueError as exc:
                raise PoisonMessage(f"not JSON: {exc}") from exc

        def agent(message: Message) -> None:
            time.sleep(max(0.0, let_go - time.monotonic()))
            handled.append(parse(message))

        def batch_agent(messages, each) -> None:
            batch_sizes.append(len(messages))
            done = []  # "the transaction": kept only if every record of the batch went through
            for message in messages:
                with each(message):
                    done.append(parse(message))
            handled.extend(done)

        values = [json.dumps({"n": n}).encode() for n in range(40)]
        values.insert(30, b"{not json")
        _produce(bootstrap, topic, values)
        group = f"test-{uuid.uuid4().hex[:8]}"
        runner = _runner(bootstrap, group, topic, agent, 4, dead_letter, batch_agent)
        runner.start()
        try:
            assert _wait(lambda: len(handled) >= 40)
        finally:
            runner.stop()
        assert handled == list(range(40))
        assert max(batch_sizes) > 1, batch_sizes
        (dead,) = consume(bootstrap, dead_letter, 1)
        assert dead.value() == b"{not json"
        assert _committed(bootstrap, group, topic) == 41
        assert (REGISTRY.get_sample_value("shop_stream_batch_fallbacks_total", {"topic": topic}) or 0) >= 1
