"""The dramatiq broker: RabbitMQ with durable quorum queues and publisher confirms.

Quorum queues are replicated (Raft) and survive a node loss in the 3-node cluster; classic
mirrored queues are deprecated. Publisher confirms mean `send` returns only once RabbitMQ has the
message, so a command the gateway accepted is never lost in flight.

Delay queues hold messages that must wait hours (order timers) inside RabbitMQ rather than in a
worker: one quorum queue per delay, whose message TTL is that delay, with no consumer, dead-lettering
each message into its actor's queue when the TTL is over. They are named by queue and delay, so a
new delay gets a new queue and never conflicts with the arguments of one declared before.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import pika
from dramatiq.brokers.rabbitmq import (
    DEAD_MESSAGE_TTL,
    MAX_DECLARE_ATTEMPTS,
    RabbitmqBroker,
    _RabbitmqConsumer,
)
from dramatiq.common import dq_name, q_name, xq_name
from dramatiq.errors import ConnectionClosed, DecodeError
from dramatiq.message import Message
from dramatiq.middleware import CurrentMessage

from shop.actors.observability import ACTOR_MESSAGES, UNDECODABLE, UNKNOWN_ACTOR

QUORUM = {"x-queue-type": "quorum"}


def actor_queue_arguments(queue_name: str) -> dict[str, Any]:
    """The arguments of an actor's queue and of its dramatiq delay queue (`.DQ`)."""
    return {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": xq_name(q_name(queue_name)), **QUORUM}


def declare_actor_queue(channel: Any, queue_name: str) -> None:
    """The queues dramatiq declares for an actor queue, with this broker's arguments, on `channel`."""
    queue = q_name(queue_name)
    channel.queue_declare(queue=queue, durable=True, arguments=actor_queue_arguments(queue))
    channel.queue_declare(queue=dq_name(queue), durable=True, arguments=actor_queue_arguments(queue))
    channel.queue_declare(
        queue=xq_name(queue), durable=True, arguments={"x-message-ttl": DEAD_MESSAGE_TTL, **QUORUM}
    )


def delay_label(delay_ms: int) -> str:
    """14_400_000 -> "4h", 5_400_000 -> "1h30m", 90_000 -> "1m30s", 1_500 -> "1s500ms"."""
    if delay_ms <= 0:
        raise ValueError(f"a delay must be positive, got {delay_ms} ms")
    parts = []
    rest = delay_ms
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)):
        amount, rest = divmod(rest, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts)


def delay_queue_name(queue_name: str, delay_ms: int) -> str:
    return f"{q_name(queue_name)}.wait.{delay_label(delay_ms)}"


def delay_queue_arguments(queue_name: str, delay_ms: int) -> dict[str, Any]:
    return {
        **QUORUM,
        "x-message-ttl": delay_ms,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": q_name(queue_name),
        # At-least-once dead-lettering (quorum queues, RabbitMQ 3.10+): a message leaves this queue only
        # once the target queue has confirmed it, so a broker restart in between cannot drop a timer.
        # It requires reject-publish overflow; no length limit is set, so nothing is ever rejected.
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


def declare_delay_queue(channel: Any, queue_name: str, delay_ms: int) -> str:
    """Declares the delay queue of (`queue_name`, `delay_ms`) and the actor queue it feeds; its name."""
    declare_actor_queue(channel, queue_name)
    name = delay_queue_name(queue_name, delay_ms)
    channel.queue_declare(queue=name, durable=True, arguments=delay_queue_arguments(queue_name, delay_ms))
    return name


class _DeadLetterWithFinalError(_RabbitmqConsumer):
    """Dead-letters a message as it is at the end of its last attempt.

    A plain reject makes RabbitMQ dead-letter the body as it was delivered, i.e. with the error of
    the attempt before (or none). Publishing the message as it is now (its options carry this
    attempt's traceback) to the dead-letter queue, then acking, on the consumer's own channel and
    in that order, keeps the error that ended it. A crash between the two leaves the delivery
    unacked: it comes back and fails again, and the dead-letter queue may hold it twice, never zero times.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        # dramatiq rejects a body it cannot decode, and RabbitMQ dead-letters it saying only
        # "rejected": set such bodies aside here, with the reason, before dramatiq sees them.
        self.iterator = self._decodable_only(self.iterator)

    def _decodable_only(self, deliveries: Any) -> Any:
        for delivery in deliveries:
            method, _properties, body = delivery
            if method is not None:
                try:
                    Message.decode(body)
                except DecodeError as exc:
                    self._dead_letter_undecodable(method.delivery_tag, body, exc)
                    continue
            yield delivery

    def _dead_letter_undecodable(self, tag: int, body: bytes, exc: DecodeError) -> None:
        """On the consuming thread itself: to the dead-letter queue with the reason, then acked."""
        reason = f"undecodable: {exc}"[:500]
        self.channel.basic_publish(
            exchange="",
            routing_key=xq_name(q_name(self.queue_name)),
            body=body,
            properties=pika.BasicProperties(delivery_mode=2, headers={"x-dead-letter-reason": reason}),
        )
        self.channel.basic_ack(tag)
        ACTOR_MESSAGES.labels(UNDECODABLE, "dead_lettered").inc()
        self.logger.warning("dead-lettered an undecodable message on %s: %s", self.queue_name, reason)

    def nack(self, message: Any) -> None:
        try:
            self.known_tags.remove(message._tag)
        except KeyError:
            self.logger.warning("Failed to dead-letter message: not in known tags.")
            return
        error = getattr(message, "_exception", None)
        if error is not None and "traceback" not in message.options:
            # Failed without a retry's traceback: dramatiq found no actor by that name (before any
            # middleware could count it), or an actor's `throws` error. Keep the reason with it.
            message.options["dead_letter_reason"] = f"{type(error).__name__}: {error}"[:500]
        if message.actor_name not in self.broker.actors:
            ACTOR_MESSAGES.labels(UNKNOWN_ACTOR, "dead_lettered").inc()
        body = message._message.encode()
        dead_letter_queue = xq_name(q_name(self.queue_name))

        def publish_then_ack() -> None:
            self.channel.basic_publish(
                exchange="",
                routing_key=dead_letter_queue,
                body=body,
                properties=pika.BasicProperties(delivery_mode=2),
            )
            self.channel.basic_ack(message._tag)

        self.connection.add_callback_threadsafe(partial(publish_then_ack))


class QuorumRabbitmqBroker(RabbitmqBroker):
    @property
    def consumer_class(self) -> type[_RabbitmqConsumer]:
        return _DeadLetterWithFinalError

    def _ensure_queue(self, canonical_queue_name: str) -> None:
        # dramatiq declares the queue, its .DQ and its .XQ one by one; one function does all three here,
        # so the relay (which declares on a connection of its own) cannot drift from this broker.
        attempts = 0
        while canonical_queue_name in self.queues_pending:
            try:
                declare_actor_queue(self.channel, canonical_queue_name)
                self.queues_pending.discard(canonical_queue_name)
            except (pika.exceptions.AMQPConnectionError, pika.exceptions.AMQPChannelError) as exc:
                del self.connection
                attempts += 1
                if attempts >= MAX_DECLARE_ATTEMPTS:
                    raise ConnectionClosed(exc) from None  # type: ignore[no-untyped-call]


def node_urls(rabbitmq_url: str) -> list[str]:
    """`SHOP_RABBITMQ_URL` lists the nodes of a cluster, comma-separated; a connection tries them in
    order, so any node that answers will do (quorum queues are reachable through every node)."""
    urls = [url.strip() for url in rabbitmq_url.split(",") if url.strip()]
    if not urls:
        raise ValueError("no RabbitMQ URL given")
    return urls


def connection_parameters(rabbitmq_url: str) -> list[pika.URLParameters]:
    return [pika.URLParameters(url) for url in node_urls(rabbitmq_url)]


def create_broker(rabbitmq_url: str) -> QuorumRabbitmqBroker:
    broker = QuorumRabbitmqBroker(url=node_urls(rabbitmq_url), confirm_delivery=True)
    # Command actors know their message by it: its id is the command's identity (shop.actors.commands).
    broker.add_middleware(CurrentMessage())
    return broker
