"""The dramatiq broker: RabbitMQ with durable quorum queues and publisher confirms.

Quorum queues are replicated (Raft) and survive a node loss in the 3-node cluster; classic
mirrored queues are deprecated. Publisher confirms mean `send` returns only once RabbitMQ has the
message, so a command the gateway accepted is never lost in flight.
"""

from __future__ import annotations

from typing import Any

from dramatiq.brokers.rabbitmq import DEAD_MESSAGE_TTL, RabbitmqBroker
from dramatiq.common import xq_name

QUORUM = {"x-queue-type": "quorum"}


class QuorumRabbitmqBroker(RabbitmqBroker):
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
