"""Lanes: the threads that run the stream agents.

The runner's consumer hands every record of a partition to the same lane, which handles them one
after the other: order per partition (so per key) is kept, while the records of other partitions
are handled side by side in other lanes. An agent waits on PostgreSQL most of the time, so lanes
overlap those waits even under the GIL, and a slow or backlogged topic (thousands of
`stock.reserved` answers) no longer holds up another (`order.created`) behind it.

A lane reports every record it is done with (handled, or dead-lettered when the agent raised
`PoisonMessage`) to the runner, which stores its offset; any other failure is transient and the
lane retries the same record with a growing backoff. A record whose partition was revoked from
this process while it waited in the lane is skipped: the partition's new owner reads it.

Batches: when records have piled up in a lane (a burst, a flash sale), the consecutive ones of a
topic whose agent also comes as a `BatchAgent` are handed to it together, up to MAX_BATCH, and it
handles them in one database transaction: one commit (one WAL flush) and one wake-up of the relay
instead of one each. Order and idempotency are the same as one at a time (the records are handled
in their order, each event id still goes into the inbox, and no offset is stored before the
commit); a batch that fails in any way is rolled back whole and its halves are tried again the
same way, down to single records, where a poison record is dead-lettered and a transient failure
retried, as always.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

from confluent_kafka import Message, Producer
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from prometheus_client import Counter, Histogram

from shop.names import PoisonMessage as PoisonMessage
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

STREAM_BATCHES = Histogram(
    "shop_stream_batch_records",
    "Records handled together in one transaction by a batch agent",
    ["topic"],
    buckets=(2, 5, 10, 20, 50, 100),
)
STREAM_BATCH_FALLBACKS = Counter(
    "shop_stream_batch_fallbacks_total",
    "Batches rolled back and handled again in halves (a poison record, a deadlock, ...)",
    ["topic"],
)

Agent = Callable[[Message], None]
TopicPartitionKey = tuple[str, int]
MAX_BATCH = 50  # records of one topic handled in one transaction


class BatchAgent(Protocol):
    """Handles `messages`, in their order, in one transaction: all of them, or (raising) none. It
    enters `each(message)` around its work on each one (the lane makes that record's span current
    there, so the record's database calls and outbox rows join its own trace)."""

    def __call__(
        self, messages: Sequence[Message], each: Callable[[Message], AbstractContextManager[None]]
    ) -> None: ...


def position(message: Message) -> tuple[str, int, int]:
    """(topic, partition, offset) of a consumed message; librdkafka sets all three on those."""
    topic, partition, offset = message.topic(), message.partition(), message.offset()
    assert topic is not None
    assert partition is not None
    assert offset is not None
    return topic, partition, offset


class Assignment:
    """The partitions this process owns, and which of them a lane is busy with, under one lock: a
    lane starts a record only while its partition is owned, since the same ownership as when the
    record was read (a revocation moves the partition to its next generation: a record read before
    it is skipped even if the partition came back, since it is read again from the committed
    offset), and a revocation waits for the records of its partitions that lanes have started."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._owned: set[TopicPartitionKey] = set()
        self._generations: dict[TopicPartitionKey, int] = {}
        self._busy: dict[TopicPartitionKey, int] = {}

    def add(self, partitions: list[TopicPartitionKey]) -> None:
        with self._lock:
            self._owned.update(partitions)

    def generation(self, partition: TopicPartitionKey) -> int:
        with self._lock:
            return self._generations.get(partition, 0)

    def owns(self, partition: TopicPartitionKey, generation: int) -> bool:
        with self._lock:
            return partition in self._owned and self._generations.get(partition, 0) == generation

    def start(self, partition: TopicPartitionKey, generation: int) -> bool:
        """True, and the partition counted busy, if it is owned as it was when the record was read."""
        with self._lock:
            if partition not in self._owned or self._generations.get(partition, 0) != generation:
                return False
            self._busy[partition] = self._busy.get(partition, 0) + 1
            return True

    def finish(self, partition: TopicPartitionKey) -> None:
        with self._lock:
            self._busy[partition] -= 1
            if not self._busy[partition]:
                del self._busy[partition]
            self._lock.notify_all()

    def revoke(self, partitions: list[TopicPartitionKey], timeout: float) -> bool:
        """Disowns the partitions and waits up to `timeout` s for the records lanes have started on
        them; False when some are still running (their partition's new owner may handle them too,
        which its inbox turns away)."""
        revoked = set(partitions)
        with self._lock:
            self._owned -= revoked
            for partition in revoked:
                self._generations[partition] = self._generations.get(partition, 0) + 1
            return self._lock.wait_for(lambda: not revoked & self._busy.keys(), timeout)


class Lane:
    """One thread handling, in arrival order, the records the runner puts in its queue."""

    def __init__(
        self,
        number: int,
        agents: Mapping[str, Agent],
        producer: Producer,
        dead_letter_topic: str,
        max_backoff: float,
        assignment: Assignment,
        done: queue.SimpleQueue[tuple[Message, bool]],
        stopping: threading.Event,
        batch_agents: Mapping[str, BatchAgent] | None = None,
    ) -> None:
        self._agents = agents
        self._batch_agents = dict(batch_agents or {})
        self._producer = producer
        self._dead_letter_topic = dead_letter_topic
        self._max_backoff = max_backoff
        self._assignment = assignment
        self._done = done  # (record, finished): finished records get their offset stored
        self._stopping = stopping
        self._queue: queue.SimpleQueue[tuple[Message, int] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=f"stream-lane-{number}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def put(self, message: Message, generation: int) -> None:
        """`generation`: the partition's, when the record was read (see `Assignment`)."""
        self._queue.put((message, generation))

    def close(self) -> None:
        """Lets the lane finish the record at hand (a retry gives up) and leave the rest."""
        self._queue.put(None)
        self._thread.join()

    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        waiting: deque[tuple[Message, int] | None] = deque()  # taken from the queue, not yet handled
        while True:
            if not waiting:
                waiting.append(self._queue.get())
            first = waiting[0]
            if first is None:
                return
            topic = first[0].topic()
            if topic in self._batch_agents:
                # What else has piled up, without waiting for more.
                while len(waiting) < MAX_BATCH:
                    try:
                        waiting.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                batch: list[tuple[Message, int]] = []
                while waiting and (item := waiting[0]) is not None and item[0].topic() == topic:
                    batch.append(item)
                    waiting.popleft()
                    if len(batch) == MAX_BATCH:
                        break
                if len(batch) > 1:
                    self._run_batch(topic or "", batch)
                    continue
                waiting.appendleft(batch[0])
            item = waiting.popleft()
            assert item is not None  # checked above
            self._run_one(*item)

    def _run_one(self, message: Message, generation: int) -> None:
        topic, partition, _ = position(message)
        finished = False
        if not self._stopping.is_set() and self._assignment.start((topic, partition), generation):
            try:
                finished = self._handle(message, generation)
            finally:
                self._assignment.finish((topic, partition))
        self._done.put((message, finished))

    def _run_batch(self, topic: str, batch: list[tuple[Message, int]]) -> None:
        """The records in one transaction; if that fails, each half of them again, down to single
        records, so that one poison record costs a few rolled-back batches, not the whole batch's
        records one transaction each."""
        started: list[tuple[Message, int]] = []
        for message, generation in batch:
            _, partition, _ = position(message)
            if not self._stopping.is_set() and self._assignment.start((topic, partition), generation):
                started.append((message, generation))
            else:
                self._done.put((message, False))  # revoked or stopping: its next owner reads it
        if len(started) < 2:  # nothing, or one record left: the one-record path, with its retries
            for message, generation in started:
                self._assignment.finish((topic, position(message)[1]))
                self._run_one(message, generation)
            return
        handled = False
        began = time.perf_counter()
        try:
            spans = {id(message): self._span(message) for message, _ in started}
            try:
                self._batch_agents[topic]([m for m, _ in started], lambda m: _current(spans[id(m)]))
                handled = True
            except Exception as exc:
                STREAM_BATCH_FALLBACKS.labels(topic).inc()
                for span in spans.values():
                    span.record_exception(exc)
                    span.set_status(Status(StatusCode.ERROR, "batch rolled back; tried again in halves"))
                log.info("a batch of %d %s records failed (%r); trying its halves", len(started), topic, exc)
            finally:
                for span in spans.values():
                    span.end()
            if handled:
                each = (time.perf_counter() - began) / len(started)  # the batch's time, shared out
                STREAM_BATCHES.labels(topic).observe(len(started))
                for message, _ in started:
                    STREAM_RECORDS.labels(topic, "processed").inc()
                    STREAM_DURATION.labels(topic).observe(each)
                    self._done.put((message, True))
        finally:
            for message, _ in started:
                self._assignment.finish((topic, position(message)[1]))
        if not handled:  # the failure is in one half or the other (or both): try each again
            half = len(started) // 2
            self._run_batch(topic, started[:half])
            self._run_batch(topic, started[half:])

    def _handle(self, message: Message, generation: int) -> bool:
        """True when the message is done with (handled or dead-lettered); False when stopping or no
        longer ours. One CONSUMER span per record, child of the producer's (the relay's publish
        span), current while the agent works, so its database calls and the outbox rows it writes
        join the trace."""
        span = self._span(message)
        try:
            with _current(span):
                return self._handle_in_span(message, generation, span)
        finally:
            span.end()

    @staticmethod
    def _span(message: Message) -> Span:
        topic, partition, offset = position(message)
        return tracer().start_span(
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

    def _handle_in_span(self, message: Message, generation: int, span: Span) -> bool:
        topic, partition, offset = position(message)
        agent = self._agents[topic]
        backoff = 0.5
        started = time.perf_counter()
        while not self._stopping.is_set() and self._assignment.owns((topic, partition), generation):
            try:
                agent(message)
                STREAM_RECORDS.labels(topic, "processed").inc()
                STREAM_DURATION.labels(topic).observe(time.perf_counter() - started)
                return True
            except PoisonMessage as exc:
                reason = str(exc)
            except Exception as exc:
                reason = None
                STREAM_FAILURES.labels(topic).inc()
                span.record_exception(exc)
                log.exception(
                    "agent for %s failed at partition %d offset %d; retrying in %.1fs",
                    topic,
                    partition,
                    offset,
                    backoff,
                )
            if reason is not None:
                try:
                    self._dead_letter(message, reason)
                except Exception:  # the dead-letter topic away: keep the record, try again
                    log.exception(
                        "could not dead-letter %s[%d]@%d; retrying in %.1fs",
                        topic,
                        partition,
                        offset,
                        backoff,
                    )
                else:
                    STREAM_RECORDS.labels(topic, "dead_lettered").inc()
                    span.set_attribute("shop.dead_lettered", True)
                    span.set_status(Status(StatusCode.ERROR, "poison message"))
                    return True
            self._stopping.wait(backoff)
            backoff = min(backoff * 2, self._max_backoff)
        return False  # stopping, or revoked mid-retry: the offset stays where it was

    def _dead_letter(self, message: Message, reason: str) -> None:
        topic, partition, offset = position(message)
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
        self._producer.produce(
            self._dead_letter_topic,
            value=message.value(),
            key=message.key(),
            headers=headers,
            on_delivery=lambda err, msg: delivered.append(err),
        )
        self._producer.flush(30)
        if not delivered or delivered[0] is not None:
            # Committing past a message we failed to keep would lose it: fail loudly instead.
            raise RuntimeError(f"could not dead-letter {topic}[{partition}]@{offset}: {delivered}")
        log.warning("dead-lettered %s[%d]@%d: %s", topic, partition, offset, json.dumps(reason))


@contextmanager
def _current(span: Span) -> Iterator[None]:
    """`span` is the current span inside the block."""
    token = otel_context.attach(trace.set_span_in_context(span))
    try:
        yield
    finally:
        otel_context.detach(token)
