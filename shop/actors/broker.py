"""The dramatiq broker: RabbitMQ with durable quorum queues and publisher confirms.

Quorum queues are replicated (Raft) and survive a node loss in the 3-node cluster; classic
mirrored queues are deprecated. Publisher confirms mean `send` returns only once RabbitMQ has the
message, so a command the gateway accepted is never lost in flight.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import pika
from dramatiq.brokers.rabbitmq import DEAD_MESSAGE_TTL, RabbitmqBroker, _RabbitmqConsumer
from dramatiq.common import q_name, xq_name

QUORUM = {"x-queue-type": "quorum"}


class _DeadLetterWithFinalError(_RabbitmqConsumer):
    """Dead-letters a message as it is at the end of its last attempt.

    A plain reject makes RabbitMQ dead-letter the body as it was delivered, i.e. with the error of
    the attempt before (or none). Publishing the message as it is now (its options carry this
    attempt's traceback) to the dead-letter queue, then acking, on the consumer's own channel and
    in that order, keeps the error that ended it. A crash between the two leaves the delivery
    unacked: it comes back and fails again, and the dead-letter queue may hold it twice, never zero times.
    """

    def nack(self, message: Any) -> None:
        try:
            self.known_tags.remove(message._tag)
        except KeyError:
            self.logger.warning("Failed to dead-letter message: not in known tags.")
            return
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

    def _build_queue_arguments(self, queue_name: str) -> dict[str, Any]:
        arguments: dict[str, Any] = super()._build_queue_arguments(queue_name)  # type: ignore[no-untyped-call]
        # Quorum queues have no priorities in RabbitMQ 3.10; dramatiq adds one only when asked.
        arguments.pop("x-max-priority", None)
        return {**arguments, **QUORUM}

    def _declare_xq_queue(self, queue_name: str) -> Any:
        return self.channel.queue_declare(
            queue=xq_name(queue_name),
            durable=True,
            arguments={"x-message-ttl": DEAD_MESSAGE_TTL, **QUORUM},
        )


def create_broker(rabbitmq_url: str) -> QuorumRabbitmqBroker:
    return QuorumRabbitmqBroker(url=rabbitmq_url, confirm_delivery=True)
