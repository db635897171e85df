"""What every actor does, measured and traced: dramatiq middlewares on the process's broker.

`shop_actor_messages_total{actor, outcome}` counts each processed message once per attempt:
`succeeded`, `retried` (it failed and dramatiq's Retries middleware scheduled another attempt),
`dead_lettered` (it failed for good and went to the queue's dead-letter queue) or `skipped`.
The middleware sits before Retries in the broker's list: dramatiq runs the `after_*` hooks in
reverse order, so Retries has decided by the time this one looks at `message.failed`.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import dramatiq
from dramatiq.middleware import Retries
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import Counter, Gauge, Histogram

from shop.observability.tracing import TRACE_OPTION, extract, inject, tracer

ACTOR_MESSAGES = Counter(
    "shop_actor_messages_total", "Actor messages processed, by outcome", ["actor", "outcome"]
)
ACTOR_DURATION = Histogram(
    "shop_actor_duration_seconds",
    "Time an actor took on one message (every attempt)",
    ["actor"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
ACTOR_IN_PROGRESS = Gauge("shop_actor_messages_in_progress", "Messages an actor is working on now", ["actor"])


OUTCOMES = ("succeeded", "retried", "dead_lettered", "skipped")
# Actor labels of poison that names no actor of ours: a body that is no dramatiq message (dead-
# lettered by the consumer), and a message for an actor nobody declared (shop.actors.broker). One
# label each, whatever the message says, so that poison cannot make up new series.
UNDECODABLE = "(undecodable)"
UNKNOWN_ACTOR = "(unknown actor)"
for _label in (UNDECODABLE, UNKNOWN_ACTOR):
    ACTOR_MESSAGES.labels(_label, "dead_lettered")


def _actor_label(broker: dramatiq.Broker, message: Any) -> str:
    return str(message.actor_name) if message.actor_name in broker.actors else UNKNOWN_ACTOR


class ActorMetrics(dramatiq.Middleware):
    def __init__(self) -> None:
        self._started = threading.local()

    def after_declare_actor(self, broker: dramatiq.Broker, actor: dramatiq.Actor[..., Any]) -> None:
        # Every series exists from the start at 0, so the first dead letter is an increase an
        # alert's `increase()` can see, not the birth of a series.
        for outcome in OUTCOMES:
            ACTOR_MESSAGES.labels(actor.actor_name, outcome)

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        self._started.at = time.perf_counter()
        ACTOR_IN_PROGRESS.labels(_actor_label(broker, message)).inc()

    def _finish(self, actor: str) -> None:
        """Ends what `before_process_message` began, if it ran for this message."""
        started = getattr(self._started, "at", None)
        if started is not None:
            ACTOR_DURATION.labels(actor).observe(time.perf_counter() - started)
            ACTOR_IN_PROGRESS.labels(actor).dec()
            self._started.at = None

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        actor = _actor_label(broker, message)
        self._finish(actor)
        outcome = "dead_lettered" if message.failed else "succeeded" if exception is None else "retried"
        ACTOR_MESSAGES.labels(actor, outcome).inc()

    def after_skip_message(self, broker: dramatiq.Broker, message: Any) -> None:
        # A middleware earlier in the list may skip before this one's before hook ran.
        actor = _actor_label(broker, message)
        self._finish(actor)
        ACTOR_MESSAGES.labels(actor, "skipped").inc()


def add_actor_middlewares(broker: dramatiq.Broker) -> None:
    # Tracing first: its span is current while every other middleware and the actor run.
    broker.add_middleware(ActorTracing(), before=type(broker.middleware[0]))
    broker.add_middleware(ActorMetrics(), before=Retries)


class ActorTracing(dramatiq.Middleware):
    """W3C trace context through RabbitMQ, in the message's options (`trace_context`), which
    dramatiq keeps across retries and into the dead-letter queue.

    Sending: a PRODUCER span per message, whose context the message carries. Processing: a CONSUMER
    span, child of the sender's, current while the actor runs, so its database and Redis calls, the
    outbox rows it writes and the messages it sends all join the same trace.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def before_enqueue(self, broker: dramatiq.Broker, message: Any, delay: int | None) -> None:
        span = tracer().start_span(
            f"{message.queue_name} publish",
            kind=SpanKind.PRODUCER,
            attributes=_messaging_attributes(message, "publish"),
        )
        message.options[TRACE_OPTION] = inject({}, trace.set_span_in_context(span))
        self._local.sending = span

    def after_enqueue(self, broker: dramatiq.Broker, message: Any, delay: int | None) -> None:
        span = getattr(self._local, "sending", None)
        if span is not None:
            span.end()
            self._local.sending = None

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        span = tracer().start_span(
            f"{message.actor_name} process",
            context=extract(message.options.get(TRACE_OPTION)),
            kind=SpanKind.CONSUMER,
            attributes=_messaging_attributes(message, "process"),
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        self._local.processing = (span, token)

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        self._end(exception)

    def after_skip_message(self, broker: dramatiq.Broker, message: Any) -> None:
        self._end(None)

    def _end(self, exception: BaseException | None) -> None:
        current = getattr(self._local, "processing", None)
        if current is None:
            return
        span, token = current
        if exception is not None:
            span.record_exception(exception)
            span.set_status(Status(StatusCode.ERROR, type(exception).__name__))
        span.end()
        otel_context.detach(token)
        self._local.processing = None


def _messaging_attributes(message: Any, operation: str) -> dict[str, str]:
    return {
        "messaging.system": "rabbitmq",
        "messaging.operation.type": operation,
        "messaging.destination.name": message.queue_name,
        "messaging.message.id": message.message_id,
        "shop.actor": message.actor_name,
    }
