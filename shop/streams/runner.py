"""The stream-agent loop: one Kafka consumer group, one handler (agent) per topic.

Delivery is at least once: an offset is stored only after its agent returned, and an agent
returns only after its own database transaction committed (and recorded the event id in the
inbox, which makes the redelivery after a crash harmless). librdkafka commits the stored offsets
in the background every COMMIT_INTERVAL_MS, on a rebalance and on close, instead of one synchronous
round trip to the group coordinator per record: a crash redelivers at most that interval's records,
which the inboxes turn away. A message an agent cannot understand
(`PoisonMessage`) goes to the dead-letter topic and the loop carries on; any other failure is
treated as transient: the loop backs off and retries the same message, so order per key is kept.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from prometheus_client import Counter, Gauge, Histogram

from shop.observability.tracing import extract, kafka_headers_carrier, tracer

log = logging.getLogger("shop.streams")

STREAM_RECORDS = Counter(
    "shop_stream_records_total",
    "Records the stream agents finished with: processed, or dead_lettered (poison)",
    ["topic", "outcome"],
)
STREAM_FAILURES = Counter(
    "shop_stream_agent_failures_total", "Failed attempts at a record (retried after a backoff)", ["topic"]
)
STREAM_DURATION = Histogram(
    "shop_stream_processing_seconds",
    "Time an agent took on one record, retries included",
    ["topic"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
CONSUMER_LAG = Gauge(
    "shop_stream_consumer_lag",
    "Records between the group's committed offset and the end of each assigned partition"
    " (librdkafka statistics, every few seconds)",
    ["topic", "partition"],
)
STATISTICS_INTERVAL_MS = 5000
COMMIT_INTERVAL_MS = 500

DEAD_LETTER_TOPIC = "dead-letter"

Agent = Callable[[Message], None]


def _position(message: Message) -> tuple[str, int, int]:
    """(topic, partition, offset) of a consumed message; librdkafka sets all three on those."""
    topic, partition, offset = message.topic(), message.partition(), message.offset()
    assert topic is not None
    assert partition is not None
    assert offset is not None
    return topic, partition, offset


class PoisonMessage(Exception):
    """The message can never be handled (does not parse, unknown schema version): dead-letter it."""


class StreamRunner:
    def __init__(
        self,
        consumer_config: Mapping[str, Any],
        producer_config: Mapping[str, Any],
        agents: Mapping[str, Agent],
        dead_letter_topic: str = DEAD_LETTER_TOPIC,
        max_backoff: float = 30.0,
    ) -> None:
        self._consumer_config = {
            **consumer_config,
            "enable.auto.commit": True,
            "enable.auto.offset.store": False,  # stored by hand, once a record is done with
            "auto.commit.interval.ms": COMMIT_INTERVAL_MS,
            "on_commit": _log_commit_failure,
            "statistics.interval.ms": STATISTICS_INTERVAL_MS,
            "stats_cb": record_consumer_lag,
        }
        self._producer_config = {**producer_config, "enable.idempotence": True}
        self._agents = dict(agents)
        self._dead_letter_topic = dead_letter_topic
        self._max_backoff = max_backoff
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stream-runner", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()

    def alive(self) -> bool:
        return self._thread.is_alive()

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
        consumer.subscribe(sorted(self._agents), on_revoke=forget_lag, on_lost=forget_lag)
        log.info("consuming %s", ", ".join(sorted(self._agents)))
        try:
            while not self._stopping.is_set():
                message = consumer.poll(0.5)
                if message is None:
                    continue
                error = message.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        log.warning("consumer error: %s", error)
                    continue
                if self._handle(consumer, producer, message):
                    consumer.store_offsets(message=message)
        finally:
            producer.flush(10)
            consumer.close()  # leaves the group at once, so a restart rebalances fast

    def _handle(self, consumer: Consumer, producer: Producer, message: Message) -> bool:
        """True when the message is done with (handled or dead-lettered); False when stopping.
        One CONSUMER span per record, child of the producer's (the relay's publish span), current
        while the agent works, so its database calls and the outbox rows it writes join the trace."""
        topic, partition, offset = _position(message)
        span = tracer().start_span(
            f"{topic} process",
            context=extract(kafka_headers_carrier(message.headers())),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "process",
                "messaging.destination.name": topic,
                "messaging.destination.partition.id": str(partition),
                "messaging.kafka.offset": offset,
            },
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            return self._handle_in_span(consumer, producer, message, span)
        finally:
            span.end()
            otel_context.detach(token)

    def _handle_in_span(self, consumer: Consumer, producer: Producer, message: Message, span: Span) -> bool:
        topic, partition, offset = _position(message)
        agent = self._agents[topic]
        backoff = 0.5
        started = time.perf_counter()
        while not self._stopping.is_set():
            try:
                agent(message)
                STREAM_RECORDS.labels(topic, "processed").inc()
                STREAM_DURATION.labels(topic).observe(time.perf_counter() - started)
                return True
            except PoisonMessage as exc:
                self._dead_letter(producer, message, str(exc))
                STREAM_RECORDS.labels(topic, "dead_lettered").inc()
                span.set_attribute("shop.dead_lettered", True)
                span.set_status(Status(StatusCode.ERROR, "poison message"))
                return True
            except Exception as exc:
                STREAM_FAILURES.labels(topic).inc()
                span.record_exception(exc)
                log.exception(
                    "agent for %s failed at partition %d offset %d; retrying in %.1fs",
                    topic,
                    partition,
                    offset,
                    backoff,
                )
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, self._max_backoff)
        # Stopping mid-retry: rewind so the next owner of this partition starts at this message.
        consumer.seek(TopicPartition(topic, partition, offset))
        return False

    def _dead_letter(self, producer: Producer, message: Message, reason: str) -> None:
        topic, partition, offset = _position(message)
        original = message.headers() or []
        headers: list[tuple[str, str | bytes | None]] = [
            *(original.items() if isinstance(original, dict) else original),
            ("x-dead-letter-reason", reason.encode()),
            ("x-original-topic", topic.encode()),
            ("x-original-partition", str(partition).encode()),
            ("x-original-offset", str(offset).encode()),
            ("x-dead-lettered-at", str(time.time()).encode()),
        ]
        delivered: list[Any] = []
        producer.produce(
            self._dead_letter_topic,
            value=message.value(),
            key=message.key(),
            headers=headers,
            on_delivery=lambda err, msg: delivered.append(err),
        )
        producer.flush(30)
        if not delivered or delivered[0] is not None:
            # Committing past a message we failed to keep would lose it: fail loudly instead.
            raise RuntimeError(f"could not dead-letter {topic}[{partition}]@{offset}: {delivered}")
        log.warning("dead-lettered %s[%d]@%d: %s", topic, partition, offset, json.dumps(reason))


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
