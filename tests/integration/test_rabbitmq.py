"""RabbitMQ: durable quorum queues, publisher confirms, manual acks; and dramatiq on top."""

from __future__ import annotations

import threading
import time
import uuid

import dramatiq
import pika
import pytest

from harness.rabbitmq import management
from shop.actors.broker import create_broker


@pytest.fixture
def channel(settings):
    connection = pika.BlockingConnection(pika.URLParameters(settings.rabbitmq_url))
    channel = connection.channel()
    yield channel
    connection.close()


def test_publish_with_confirms_to_a_quorum_queue_and_consume_with_manual_ack(channel):
    queue = f"smoke.{uuid.uuid4().hex[:8]}"
    channel.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
    try:
        channel.confirm_delivery()
        for n in range(3):
            # With confirms on, basic_publish raises unless the broker took the message.
            channel.basic_publish(
                "", queue, str(n).encode(), pika.BasicProperties(delivery_mode=2), mandatory=True
            )
        received = []
        for method, _properties, body in channel.consume(queue, inactivity_timeout=5):
            if method is None:
                break
            received.append(body)
            channel.basic_ack(method.delivery_tag)
            if len(received) == 3:
                break
        channel.cancel()
        assert received == [b"0", b"1", b"2"]
        assert channel.queue_declare(queue, passive=True).method.message_count == 0
        assert management("GET", f"/api/queues/shop/{queue}")["type"] == "quorum"
    finally:
        channel.queue_delete(queue)


def test_an_unacked_delivery_comes_back_after_the_consumer_dies(settings, channel):
    queue = f"smoke.{uuid.uuid4().hex[:8]}"
    channel.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
    try:
        channel.confirm_delivery()
        channel.basic_publish("", queue, b"work", pika.BasicProperties(delivery_mode=2))
        dying = pika.BlockingConnection(pika.URLParameters(settings.rabbitmq_url))
        _method, _props, body = dying.channel().basic_get(queue, auto_ack=False)
        assert body == b"work"
        dying.close()  # no ack: the message must not be lost
        deadline = time.monotonic() + 5
        while True:
            _method, _props, body = channel.basic_get(queue, auto_ack=True)
            if body is not None or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert body == b"work"
    finally:
        channel.queue_delete(queue)


def test_a_delay_queue_dead_letters_into_the_work_queue_when_due(channel):
    # The shape ARCHITECTURE.md asks of long timers: they wait inside RabbitMQ, not in a worker.
    work = f"smoke.work.{uuid.uuid4().hex[:8]}"
    delay = f"{work}.delay"
    channel.queue_declare(work, durable=True, arguments={"x-queue-type": "quorum"})
    channel.queue_declare(
        delay,
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-message-ttl": 500,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": work,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        },
    )
    try:
        channel.confirm_delivery()
        channel.basic_publish("", delay, b"due", pika.BasicProperties(delivery_mode=2))
        assert channel.basic_get(work, auto_ack=True)[2] is None
        deadline = time.monotonic() + 10
        body = None
        while body is None and time.monotonic() < deadline:
            _method, props, body = channel.basic_get(work, auto_ack=True)
            time.sleep(0.05)
        assert body == b"due"
        assert (
            props.headers["x-death"][0]["reason"] == b"expired"
            or props.headers["x-death"][0]["reason"] == "expired"
        )
    finally:
        channel.queue_delete(delay)
        channel.queue_delete(work)


def test_dramatiq_actors_run_on_quorum_queues_with_confirms(settings):
    broker = create_broker(settings.rabbitmq_url)
    queue = f"smoke_{uuid.uuid4().hex[:8]}"
    done = threading.Event()
    seen: list[int] = []

    @dramatiq.actor(broker=broker, queue_name=queue, max_retries=0)
    def remember(n: int) -> None:
        seen.append(n)
        if len(seen) == 3:
            done.set()

    worker = dramatiq.Worker(broker, worker_timeout=100, worker_threads=2)
    worker.start()
    try:
        for n in range(3):
            remember.send(n)
        assert done.wait(15)
        assert sorted(seen) == [0, 1, 2]
        for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
            assert management("GET", f"/api/queues/shop/{name}")["type"] == "quorum"
    finally:
        worker.stop()
        channel = pika.BlockingConnection(pika.URLParameters(settings.rabbitmq_url)).channel()
        for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
            channel.queue_delete(name)
        broker.close()
