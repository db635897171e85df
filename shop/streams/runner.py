"""The stream-agent loop: one Kafka consumer group, one handler (agent) per topic.

Delivery is at least once: an offset is stored only after its agent returned, and an agent
returns only after its own database transaction committed (and recorded the event id in the
inbox, which makes the redelivery after a crash harmless). librdkafka commits the stored offsets
in the background every COMMIT_INTERVAL_MS, on a rebalance and on close, instead of one synchronous
round trip to the group coordinator per record: a crash redelivers at most that interval's records,
which the inboxes turn away.

One consumer per process reads every topic; its thread hands each record to the lane (thread) of
its partition (`shop.streams.lanes`), so a partition's records are handled in order while other
partitions' are handled beside them, and stores the offsets of the records the lanes are done with.
A message an agent cannot understand (`PoisonMessage`) goes to the dead-letter topic and the lane
carries on; any other failure is treated as transient: the lane backs off and retries the same
message, so order per key is kept. A partition with MAX_IN_FLIGHT records waiting in its lane is
paused (the consumer keeps polling, so it stays in the group, and reads the other partitions on)
until half of them are done: Kafka hands out records a partition at a time, thousands at once, and
without this one partition's backlog would fill one lane while the others sit idle.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import zlib
from collections.abc import Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from prometheus_client import Gauge

from shop.names import DEAD_LETTER_TOPIC
from shop.processes.background import BackgroundThreads
from shop.streams.lanes import (
    STREAM_RECORDS,
    Agent,
    Assignment,
    BatchAgent,
    Lane,
    PoisonMessage,
    TopicPartitionKey,
    position,
)

__all__ = ["Agent", "BatchAgent", "PoisonMessage", "StreamRunner"]

log = logging.getLogger("shop.streams")

CONSUMER_LAG = Gauge(
    "shop_stream_consumer_lag",
    "Records between the group's committed offset and the end of each assigned partition"
    " (librdkafka statistics, every few seconds)",
    ["topic", "partition"],
)
STATISTICS_INTERVAL_MS = 5000
COMMIT_INTERVAL_MS = 500
SESSION_TIMEOUT_MS = 10_000
POLL_TIMEOUT = 0.1  # seconds: also how often finished records get their offsets stored
MAX_IN_FLIGHT = 200  # records of one partition handed to its lane and not yet done with
REVOKE_WAIT = 10.0  # seconds a rebalance waits for records lanes have started on revoked partitions


class StreamRunner(BackgroundThreads):
    def __init__(
        self,
        consumer_config: Mapping[str, Any],
        producer_config: Mapping[str, Any],
        agents: Mapping[str, Agent],
        dead_letter_topic: str = DEAD_LETTER_TOPIC,
        max_backoff: float = 30.0,
        lanes: int = 4,
        batch_agents: Mapping[str, BatchAgent] | None = None,
    ) -> None:
        """`batch_agents`: for topics whose records may be handled several in one transaction
        (`shop.streams.lanes`); each such topic needs its one-record agent in `agents` too."""
        if lanes < 1:
            raise ValueError("a stream runner needs at least one lane")
        self._consumer_config = {
            **consumer_config,
            "enable.auto.commit": True,
            "enable.auto.offset.store": False,  # stored by hand, once a record is done with
            "auto.commit.interval.ms": COMMIT_INTERVAL_MS,
            "on_commit": _log_commit_failure,
            "statistics.interval.ms": STATISTICS_INTERVAL_MS,
            "stats_cb": record_consumer_lag,
            # A process killed outright leaves the group only when its session times out, and until
            # then a rebalance waits for it and no member reads: librdkafka's 45 s default stalled
            # every reservation for 45 s after a crash (bench/chaos). 10 s; heartbeats every 2 s.
            "session.timeout.ms": SESSION_TIMEOUT_MS,
            "heartbeat.interval.ms": SESSION_TIMEOUT_MS // 5,
        }
        self._producer_config = {**producer_config, "enable.idempotence": True}
        self._agents = dict(agents)
        self._batch_agents = dict(batch_agents or {})
        if missing := self._batch_agents.keys() - self._agents.keys():
            raise ValueError(f"batch agents without a one-record agent: {sorted(missing)}")
        self._dead_letter_topic = dead_letter_topic
        self._max_backoff = max_backoff
        self._lane_count = lanes
        self._lanes: list[Lane] = []
        self._assignment = Assignment()
        self._done: queue.SimpleQueue[tuple[Message, bool]] = queue.SimpleQueue()
        self._in_flight: dict[TopicPartitionKey, int] = {}
        self._paused: set[TopicPartitionKey] = set()
        super().__init__({"stream-runner": self._run})

    def alive(self) -> bool:
        return super().alive() and all(lane.alive() for lane in self._lanes)

    def _run(self) -> None:
        if not self._agents:
            log.info("no stream agents registered; idle")
            self._stopping.wait()
            return
        consumer = Consumer(self._consumer_config)
        producer = Producer(self._producer_config)
        for topic in self._agents:  # every series from the start at 0 (see shop.actors.observability)
            for outcome in ("processed", "dead_lettered"):
                STREAM_RECORDS.labels(topic, outcome)
        self._lanes = [
            Lane(
                n,
                self._agents,
                producer,
                self._dead_letter_topic,
                self._max_backoff,
                self._assignment,
                self._done,
                self._stopping,
                self._batch_agents,
            )
            for n in range(self._lane_count)
        ]
        for lane in self._lanes:
            lane.start()
        consumer.subscribe(
            sorted(self._agents),
            on_assign=self._assigned,
            on_revoke=self._revoked,
            on_lost=self._revoked,
        )
        log.info("consuming %s in %d lanes", ", ".join(sorted(self._agents)), len(self._lanes))
        try:
            while not self._stopping.is_set():
                message = consumer.poll(POLL_TIMEOUT)
                if message is not None:
                    error = message.error()
                    if error is None:
                        self._dispatch(consumer, message)
                    elif error.code() != KafkaError._PARTITION_EOF:
                        log.warning("consumer error: %s", error)
                self._store_done(consumer)
        finally:
            for lane in self._lanes:
                lane.close()  # finishes the record at hand; the rest are read again by the next owner
            self._store_done(consumer)
            producer.flush(10)
            consumer.close()  # commits the stored offsets and leaves the group at once

    def _dispatch(self, consumer: Consumer, message: Message) -> None:
        topic, partition, _ = position(message)
        key = (topic, partition)
        self._lanes[lane_index(topic, partition, len(self._lanes))].put(
            message, self._assignment.generation(key)
        )
        self._in_flight[key] = waiting = self._in_flight.get(key, 0) + 1
        if waiting >= MAX_IN_FLIGHT and key not in self._paused:
            consumer.pause([TopicPartition(topic, partition)])
            self._paused.add(key)

    def _store_done(self, consumer: Consumer) -> None:
        """Stores the offset of each record a lane finished with (lanes report in partition order),
        and resumes a paused partition once half of its records are done with."""
        while True:
            try:
                message, finished = self._done.get_nowait()
            except queue.Empty:
                return
            topic, partition, _ = position(message)
            key = (topic, partition)
            self._in_flight[key] -= 1
            if finished:
                try:
                    consumer.store_offsets(message=message)
                except KafkaException as exc:  # revoked meanwhile: its new owner has it
                    log.info("offset of a record of a revoked partition not stored: %s", exc)
            if key in self._paused and self._in_flight[key] <= MAX_IN_FLIGHT // 2:
                self._paused.discard(key)
                if self._assignment.owns(key, self._assignment.generation(key)):
                    consumer.resume([TopicPartition(topic, partition)])

    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        keys = [(p.topic, p.partition) for p in partitions]
        self._assignment.add(keys)
        self._paused.difference_update(keys)  # an assigned partition starts unpaused

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Before the partitions go: records waiting in lanes are dropped, those being handled get
        up to REVOKE_WAIT to finish, and the offsets of all finished ones are stored, so that the
        commit of the rebalance carries them and the next owner starts right after."""
        keys = [(p.topic, p.partition) for p in partitions]
        self._paused.difference_update(keys)
        if not self._assignment.revoke(keys, REVOKE_WAIT):
            log.warning(
                "rebalance: records of revoked partitions still running; their new owner may repeat them"
            )
        self._store_done(consumer)
        forget_lag(consumer, partitions)


def lane_index(topic: str, partition: int, lanes: int) -> int:
    """The lane of a partition: the same in every process, whatever the arrival order."""
    return zlib.crc32(f"{topic}:{partition}".encode()) % lanes


def record_consumer_lag(statistics: str) -> None:
    """librdkafka's `stats_cb`: the lag of every partition this consumer is assigned (-1, unknown,
    until its first commit or fetch is skipped), from the JSON statistics it emits."""
    try:
        topics = json.loads(statistics).get("topics", {})
    except ValueError:
        return
    for topic, data in topics.items():
        for partition, stats in data.get("partitions", {}).items():
            lag = stats.get("consumer_lag", -1)
            if partition != "-1" and stats.get("fetch_state") == "active" and lag >= 0:
                CONSUMER_LAG.labels(topic, partition).set(lag)


def forget_lag(consumer: Consumer, partitions: list[TopicPartition]) -> None:
    """On a rebalance: a partition now served by another process must not keep its last lag here."""
    for partition in partitions:
        with contextlib.suppress(KeyError):
            CONSUMER_LAG.remove(partition.topic, str(partition.partition))


def _log_commit_failure(error: KafkaError | None, partitions: list[TopicPartition]) -> None:
    """librdkafka retries a failed background commit itself; the next one carries the offsets on."""
    if error is not None and error.code() != KafkaError._NO_OFFSET:
        log.warning("offset commit failed (%s); the next commit carries the offsets", error.str())
