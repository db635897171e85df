"""Poison on an actor queue, against the real RabbitMQ: a body that is no dramatiq message, a message
for an actor nobody declared, and arguments the actor cannot take each end in the queue's dead-letter
queue with the reason, are counted, and the worker goes on with the next message. (Mail's poison:
tests/integration/test_mail_actor.py; a trigger for a timer that does not exist:
tests/integration/test_order_timers.py.)"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import dramatiq
import pika
import pytest
from dramatiq.message import Message
from prometheus_client import REGISTRY

from shop.actors.broker import create_broker, declare_actor_queue
from shop.actors.observability import UNDECODABLE, add_actor_middlewares


@pytest.fixture
def queue(settings):
    broker = create_broker(settings.rabbitmq_url)
    add_actor_middlewares(broker)
    name = f"poison_{uuid.uuid4().hex[:8]}"
    seen: list[int] = []
    handled = threading.Event()

    @dramatiq.actor(broker=broker, queue_name=name, max_retries=0)
    def count(n: int) -> None:
        seen.append(n)
        handled.set()

    # Declared now, not when the worker gets to it: a raw publish before that would go nowhere.
    connection = pika.BlockingConnection(pika.URLParameters(settings.rabbitmq_url))
    declare_actor_queue(connection.channel(), name)
    connection.close()
    worker = dramatiq.Worker(broker, queues={name}, worker_timeout=100, worker_threads=1)
    worker.start()
    yield {"name": name, "actor": count, "seen": seen, "handled": handled, "broker": broker}
    worker.stop()
    channel = pika.BlockingConnection(pika.URLParameters(settings.rabbitmq_url)).channel()
    for queue_name in (name, f"{name}.DQ", f"{name}.XQ"):
        channel.queue_delete(queue_name)
    broker.close()


def _publish_raw(settings, queue_name: str, body: bytes) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(settings.rabbitmq_url))
    try:
        connection.channel().basic_publish("", queue_name, body, pika.BasicProperties(delivery_mode=2))
    finally:
        connection.close()


def _dead_letters(
    settings, queue_name: str, count: int, timeout: float = 15
) -> list[tuple[dict[str, Any], bytes]]:
    """(headers, body) of the first `count` messages in the queue's dead-letter queue."""
    connection = pika.BlockingConnection(pika.URLParameters(settings.rabbitmq_url))
    found: list[tuple[dict[str, Any], bytes]] = []
    try:
        channel = connection.channel()
        deadline = time.monotonic() + timeout
        while len(found) < count and time.monotonic() < deadline:
            method, properties, body = channel.basic_get(f"{queue_name}.XQ", auto_ack=True)
            if method is None:
                time.sleep(0.2)
                continue
            found.append((properties.headers or {}, body))
    finally:
        connection.close()
    return found


def _sample(actor: str) -> float:
    return (
        REGISTRY.get_sample_value("shop_actor_messages_total", {"actor": actor, "outcome": "dead_lettered"})
        or 0.0
    )


def test_an_undecodable_body_is_dead_lettered_with_the_reason_and_the_next_message_runs(settings, queue):
    before = _sample(UNDECODABLE)
    _publish_raw(settings, queue["name"], b"\xff\x00 this is no dramatiq message")
    queue["actor"].send(1)
    assert queue["handled"].wait(15)
    assert queue["seen"] == [1]
    [(headers, body)] = _dead_letters(settings, queue["name"], 1)
    assert body == b"\xff\x00 this is no dramatiq message"
    assert headers["x-dead-letter-reason"].startswith("undecodable")
    assert _sample(UNDECODABLE) == before + 1


def test_a_message_for_no_actor_and_arguments_the_actor_cannot_take_are_dead_lettered(settings, queue):
    stranger: Message[Any] = Message(
        queue_name=queue["name"], actor_name="no_such_actor", args=(), kwargs={}, options={}
    )
    _publish_raw(settings, queue["name"], stranger.encode())
    wrong_args: Message[Any] = Message(
        queue_name=queue["name"], actor_name=queue["actor"].actor_name, args=(), kwargs={"m": 1}, options={}
    )
    _publish_raw(settings, queue["name"], wrong_args.encode())
    queue["actor"].send(2)
    assert queue["handled"].wait(15)
    dead = _dead_letters(settings, queue["name"], 2, timeout=30)
    assert sorted(json.loads(body)["actor_name"] for _, body in dead) == sorted(
        ["no_such_actor", queue["actor"].actor_name]
    )
    for _, body in dead:
        options = json.loads(body)["options"]
        assert "traceback" in options or "dead_letter_reason" in options, options
    assert queue["seen"] == [2]
    assert _sample("(unknown actor)") >= 1
