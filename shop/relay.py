"""The outbox relay: moves committed outbox rows of every database to Kafka or RabbitMQ.

One thread per database. Each holds that database's relay lease (an advisory lock), claims the
oldest unsent rows, produces them with its own idempotent producer, waits for every
acknowledgement, and only then marks them sent in the same transaction that locked them. The
threads share no producer: a producer's flush waits for everything it holds, so one database's
record that Kafka does not take would otherwise stall every database's batches and fail them.
Rows for RabbitMQ become dramatiq messages (message id = event id), published in one AMQP
transaction per batch to their queue, or to the delay queue of their delay (order timers). A crash
between the acknowledgement and the commit publishes those rows again on the next run: delivery
is at least once, and consumers deduplicate by event id. It wakes on LISTEN/NOTIFY and polls as a
fallback. The lease holder also deletes the rows sent longer ago than the retention
(SHOP_OUTBOX_RETENTION), a small batch at a time, so the outbox does not grow forever, and the
commands' recorded answers (`command_answers`) older than that.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dramatiq
import psycopg
from confluent_kafka import KafkaError, Message, Producer
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from prometheus_client import Counter, Gauge, Histogram

from shop.actors.publisher import OutgoingMessage, TransactionalPublisher
from shop.db.commands import forget_answers
from shop.db.connections import primary_options
from shop.db.outbox import (
    KAFKA,
    RABBITMQ,
    OutboxRow,
    backlog,
    claim_unsent,
    delete_published,
    listen,
    mark_sent,
    try_take_lease,
)
from shop.observability.tracing import TRACE_OPTION, extract, inject, tracer
from shop.processes.background import BackgroundThreads

log = logging.getLogger("shop.relay")

PUBLISHED = Counter(
    "shop_relay_published_total", "Outbox rows published", ["database", "destination", "topic"]
)
LEADER = Gauge("shop_relay_leader", "1 while this relay holds the database's lease", ["database"])
BACKLOG = Gauge(
    "shop_relay_outbox_backlog", "Unpublished outbox rows (measured by the lease holder)", ["database"]
)
OLDEST_UNSENT = Gauge(
    "shop_relay_oldest_unsent_age_seconds",
    "Age of the oldest unpublished outbox row; 0 when none (measured by the lease holder)",
    ["database"],
)
PUBLISH_DELAY = Histogram(
    "shop_relay_publish_delay_seconds",
    "From a row's transaction (its created_at) until the broker acknowledged it",
    ["database", "destination"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
DELETED = Counter(
    "shop_relay_outbox_deleted_total",
    "Sent outbox rows deleted once older than the retention (SHOP_OUTBOX_RETENTION)",
    ["database"],
)
PUBLISH_FAILURES = Counter(
    "shop_relay_publish_failures_total",
    "Batches that failed to publish (retried after a backoff)",
    ["database"],
)


BACKLOG_INTERVAL = 1.0  # seconds between two backlog measurements
# Sent rows are deleted this many at a time (one short transaction each), with publishing in between.
RETENTION_BATCH = 500


class PublishFailed(RuntimeError):
    pass


class OutboxRelay(BackgroundThreads):
    def __init__(
        self,
        databases: Mapping[str, str],
        producer_config: Mapping[str, Any],
        rabbitmq_url: str | None = None,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        max_backoff: float = 30.0,
        prepared_statements: bool = False,
        retention: float = 86_400.0,
        retention_interval: float = 60.0,
    ) -> None:
        self._databases = dict(databases)
        # Sent rows are kept `retention` seconds after publication (they hold what the events said,
        # for an operator to look back), looked for every `retention_interval` seconds.
        self._retention = retention
        self._retention_interval = retention_interval
        self._prepared = prepared_statements
        # Idempotence keeps per-partition order and drops producer-retry duplicates.
        self._producer_config = {**producer_config, "enable.idempotence": True, "acks": "all"}
        self._rabbitmq_url = rabbitmq_url
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._max_backoff = max_backoff
        # One thread per database; each closes its own producer when stopped.
        loops = {name: functools.partial(self._run, name, url) for name, url in self._databases.items()}
        super().__init__({f"relay-{name}": loop for name, loop in loops.items()})

    def _run(self, database: str, url: str) -> None:
        backoff = self._poll_interval
        while not self._stopping.is_set():
            # A new producer per attempt: nothing a failed batch left in the old one is waited for.
            producer = Producer(self._producer_config)
            publisher = TransactionalPublisher(self._rabbitmq_url) if self._rabbitmq_url else None
            try:
                with psycopg.connect(
                    url, autocommit=True, connect_timeout=5, **primary_options(url, self._prepared)
                ) as conn:
                    self._serve(database, conn, _Outlets(producer, publisher))
                return
            except Exception as exc:  # database or broker away: retry with backoff, never die
                LEADER.labels(database).set(0)
                PUBLISH_FAILURES.labels(database).inc()
                log.warning("relay %s: %s; retrying in %.1fs", database, exc, backoff)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, self._max_backoff)
            finally:
                LEADER.labels(database).set(0)  # the connection, and with it the lease, is gone
                _discard(producer)
                if publisher is not None:
                    publisher.close()

    def _serve(self, database: str, conn: psycopg.Connection[Any], outlets: _Outlets) -> None:
        listen(conn)
        leader = False
        measured_at = 0.0
        expire_at = 0.0
        while not self._stopping.is_set():
            if not leader:
                leader = try_take_lease(conn)
                LEADER.labels(database).set(int(leader))
                if leader:
                    log.info("relay %s: holding the lease; publishing", database)
            if leader:
                while self._publish_batch(database, conn, outlets) == self._batch_size:
                    pass  # a full batch means there may be more: drain before waiting
                if time.monotonic() - measured_at >= BACKLOG_INTERVAL:  # not once per NOTIFY
                    _measure_backlog(database, conn)
                    measured_at = time.monotonic()
                if time.monotonic() >= expire_at:
                    deleted = delete_published(conn, self._retention, RETENTION_BATCH)
                    DELETED.labels(database).inc(deleted)
                    # The answers of commands done that long ago go with them (shop.actors.commands).
                    deleted += forget_answers(conn, self._retention, RETENTION_BATCH)
                    if deleted:
                        continue  # more may be due: publish what waits, then delete again
                    expire_at = time.monotonic() + self._retention_interval
            # Sleep until a writer commits (NOTIFY) or the poll interval passes.
            for _ in conn.notifies(timeout=self._poll_interval, stop_after=1):
                pass

    def _publish_batch(self, database: str, conn: psycopg.Connection[Any], outlets: _Outlets) -> int:
        with conn.transaction():
            rows = claim_unsent(conn, self._batch_size)
            if rows:
                self._produce_all(rows, outlets)
                mark_sent(conn, [r.id for r in rows])
        now = datetime.now(UTC)
        for row in rows:
            PUBLISHED.labels(database, row.destination, row.topic).inc()
            PUBLISH_DELAY.labels(database, row.destination).observe((now - row.created_at).total_seconds())
        return len(rows)

    def _produce_all(self, rows: list[OutboxRow], outlets: _Outlets) -> None:
        # One PRODUCER span per row, child of the context its writer left in the row's headers;
        # the published message carries the span's own context to its consumer.
        spans = {row.id: _publish_span(row) for row in rows}
        try:
            self._produce(rows, spans, outlets)
        except BaseException as exc:
            for span in spans.values():
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
        finally:
            for span in spans.values():
                span.end()

    def _produce(self, rows: list[OutboxRow], spans: Mapping[int, Span], outlets: _Outlets) -> None:
        producer, publisher = outlets.producer, outlets.publisher
        failures: list[str] = []

        def on_delivery(error: KafkaError | None, message: Message) -> None:
            if error is not None:
                failures.append(f"{message.topic()}: {error.str()}")

        for_rabbitmq = [row for row in rows if row.destination == RABBITMQ]
        for row in rows:
            if row.destination == RABBITMQ:
                continue
            if row.destination != KAFKA:
                raise PublishFailed(f"outbox row {row.id} has unknown destination {row.destination!r}")
            written = {k: v for k, v in row.headers.items() if k not in _TRACE_HEADERS}
            producer.produce(
                row.topic,
                value=row.value(),
                key=row.key.encode() if row.key is not None else None,
                headers=[
                    ("event_id", str(row.event_id).encode()),
                    *((k, v.encode()) for k, v in inject(written, _context_of(spans[row.id])).items()),
                ],
                on_delivery=on_delivery,
            )
            producer.poll(0)
        if for_rabbitmq:  # while Kafka acknowledges in the background
            if publisher is None:
                raise PublishFailed(f"outbox row {for_rabbitmq[0].id} is for RabbitMQ; this relay has none")
            publisher.publish([_dramatiq_message(row, spans[row.id]) for row in for_rabbitmq])
        remaining = producer.flush(30)
        if remaining or failures:
            # Nothing is marked sent: the transaction rolls back and the rows go out again later.
            raise PublishFailed(f"{remaining} unacknowledged, failures: {failures[:3]}")


_TRACE_HEADERS = frozenset({"traceparent", "tracestate"})


@dataclass(frozen=True)
class _Outlets:
    """Where one relay thread publishes: its own Kafka producer, and RabbitMQ when configured."""

    producer: Producer
    publisher: TransactionalPublisher | None


def _discard(producer: Producer) -> None:
    """Drops what a failed batch left unacknowledged (its rows were not marked sent and go out
    again), so that closing the producer does not wait for it. After a good batch it holds nothing."""
    producer.purge()
    producer.flush(0)  # serves the purged messages' delivery reports


def _publish_span(row: OutboxRow) -> Span:
    system = "kafka" if row.destination == KAFKA else "rabbitmq"
    return tracer().start_span(
        f"{row.topic} publish",
        context=extract(row.headers),
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": system,
            "messaging.operation.type": "publish",
            "messaging.destination.name": row.topic,
            "messaging.message.id": str(row.event_id),
            "shop.outbox.id": row.id,
        },
    )


def _context_of(span: Span) -> otel_context.Context:
    return trace.set_span_in_context(span)


def _measure_backlog(database: str, conn: psycopg.Connection[Any]) -> None:
    unsent, oldest_age = backlog(conn)
    BACKLOG.labels(database).set(unsent)
    OLDEST_UNSENT.labels(database).set(oldest_age)


def _dramatiq_message(row: OutboxRow, span: Span) -> OutgoingMessage:
    message: dramatiq.Message[Any] = dramatiq.Message(
        queue_name=row.topic,
        actor_name=row.payload["actor_name"],
        args=tuple(row.payload.get("args", ())),
        kwargs=row.payload.get("kwargs", {}),
        options={TRACE_OPTION: inject({}, _context_of(span))},
        # The event id as message id: a resend after a crash is recognisably the same message.
        message_id=str(row.event_id),
        message_timestamp=int(row.created_at.timestamp() * 1000),
    )
    return OutgoingMessage(message, row.payload.get("delay_ms"))
