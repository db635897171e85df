"""Delay queues on the real RabbitMQ: messages the relay publishes with a delay wait in a queue of
their own, with no consumer, and are dead-lettered into their actor's queue when the delay is over."""

from __future__ import annotations

import contextlib
import json
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator

import dramatiq
import pika
import pika.exceptions
import pytest
from dramatiq.common import dq_name, xq_name

from harness.rabbitmq import management
from shop.actors.broker import delay_queue_arguments, delay_queue_name
from shop.actors.publisher import AmqpPublishFailed, OutgoingMessage, TransactionalPublisher

DELAYS_MS = (1000, 1500, 2000)  # every delay the tests publish with: their queues are deleted after


def _target() -> str:
    return f"delaytest_{uuid.uuid4().hex[:8]}"


def _message(queue: str, n: int = 0) -> dramatiq.Message:
    return dramatiq.Message(
        queue_name=queue,
        actor_name="fire_timer",
        args=(),
        kwargs={"order_id": str(uuid.uuid4()), "kind": "reminder_1", "n": n},
        options={},
    )


def _queues_of(target: str, *delays_ms: int) -> list[str]:
    return [target, dq_name(target), xq_name(target), *(delay_queue_name(target, d) for d in delays_ms)]


def _delete_queues(url: str, names: list[str]) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        for name in names:
            channel = connection.channel()
            with contextlib.suppress(pika.exceptions.ChannelClosedByBroker):
                channel.queue_delete(name)
            if channel.is_open:
                channel.close()
    finally:
        connection.close()


def _vhost(url: str) -> str:
    return urllib.parse.quote(pika.URLParameters(url).virtual_host, safe="")


class Reader:
    """A pika channel to look at queues with; reopened when the broker closes it (a passive declare
    of a missing queue)."""

    def __init__(self, url: str) -> None:
        self.connection = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self.connection.channel()

    def exists(self, queue: str) -> bool:
        try:
            self.channel.queue_declare(queue, passive=True)
        except pika.exceptions.ChannelClosedByBroker:
            self.channel = self.connection.channel()
            return False
        return True

    def count(self, queue: str) -> int:
        return int(self.channel.queue_declare(queue, passive=True).method.message_count)

    def get(self, queue: str) -> dict | None:
        _method, _properties, body = self.channel.basic_get(queue, auto_ack=True)
        return None if body is None else json.loads(body)

    def drain(self, queue: str, expected: int, timeout: float) -> list[dict]:
        """Up to `expected` messages, waiting at most `timeout` seconds for them."""
        received: list[dict] = []
        deadline = time.monotonic() + timeout
        while len(received) < expected and time.monotonic() < deadline:
            body = self.get(queue)
            if body is None:
                time.sleep(0.05)
            else:
                received.append(body)
        return received

    def close(self) -> None:
        if self.connection.is_open:
            self.connection.close()


@pytest.fixture
def reader(settings):
    reader = Reader(settings.rabbitmq_url)
    yield reader
    reader.close()


@pytest.fixture
def target(settings) -> Iterator[str]:
    """A queue of the test's own, deleted afterwards with its dramatiq and delay queues."""
    target = _target()
    yield target
    _delete_queues(settings.rabbitmq_url, _queues_of(target, *DELAYS_MS))


@pytest.fixture
def publisher(settings, target) -> Iterator[TransactionalPublisher]:
    """A publisher, closed before its target's queues are deleted."""
    publisher = TransactionalPublisher(settings.rabbitmq_url)
    yield publisher
    publisher.close()


def test_a_delayed_message_waits_then_lands_in_its_queue(settings, reader, target, publisher):
    message = _message(target)
    published = time.monotonic()
    publisher.publish([OutgoingMessage(message, delay_ms=1500)])

    wait = delay_queue_name(target, 1500)
    assert wait == f"{target}.wait.1s500ms"
    assert reader.exists(wait)
    info = management("GET", f"/api/queues/{_vhost(settings.rabbitmq_url)}/{wait}")
    assert info["arguments"] == delay_queue_arguments(target, 1500)
    assert info["durable"] is True
    assert reader.exists(target)

    time.sleep(max(0.0, published + 0.5 - time.monotonic()))
    assert reader.get(target) is None  # still waiting
    assert reader.count(wait) == 1

    received = reader.drain(target, 1, timeout=6)
    arrived = time.monotonic() - published
    assert len(received) == 1, "the delayed message never reached its queue"
    assert arrived >= 1.4
    body = received[0]
    assert body["message_id"] == message.message_id
    assert body["actor_name"] == "fire_timer"
    assert body["queue_name"] == target
    assert body["kwargs"] == message.kwargs
    assert dramatiq.Message.decode(json.dumps(body).encode()) == message
    assert reader.count(wait) == 0


def test_a_mixed_batch_arrives_whole_and_once(reader, target, publisher):
    direct = [_message(target, n) for n in range(100)]
    delayed = [_message(target, 100 + n) for n in range(100)]
    batch = [
        OutgoingMessage(m, delay_ms=None if i % 2 == 0 else 1000)
        for i, m in enumerate(m for pair in zip(direct, delayed, strict=True) for m in pair)
    ]
    started = time.monotonic()
    publisher.publish(batch)
    if time.monotonic() - started < 0.7:  # not so slow that the delayed ones are already due
        assert reader.count(target) == 100
        assert reader.count(delay_queue_name(target, 1000)) == 100

    received = reader.drain(target, 200, timeout=8)
    time.sleep(0.3)
    assert reader.get(target) is None  # nothing beyond the 200
    ids = [body["message_id"] for body in received]
    assert len(ids) == 200
    assert len(set(ids)) == 200, "a message arrived twice"
    assert set(ids) == {m.message_id for m in direct + delayed}
    assert reader.count(delay_queue_name(target, 1000)) == 0


def test_each_delay_has_a_queue_of_its_own(settings, reader, target, publisher):
    first = publisher
    second = TransactionalPublisher(settings.rabbitmq_url)
    try:
        one, two, again = _message(target, 1), _message(target, 2), _message(target, 3)
        first.publish([OutgoingMessage(one, delay_ms=1000)])
        first.publish([OutgoingMessage(two, delay_ms=2000)])
        # Another connection declares the 1 s queue again, as a relay that restarted would.
        second.publish([OutgoingMessage(again, delay_ms=1000)])
        assert reader.exists(delay_queue_name(target, 1000))
        assert reader.exists(delay_queue_name(target, 2000))

        received = reader.drain(target, 3, timeout=7)
        assert {body["message_id"] for body in received} == {
            one.message_id,
            two.message_id,
            again.message_id,
        }
        assert received[-1]["message_id"] == two.message_id  # the longest delay comes last
    finally:
        second.close()


def test_a_queue_deleted_behind_the_publishers_back_fails_the_batch_then_is_declared_again(
    reader, target, publisher
):
    publisher.publish([OutgoingMessage(_message(target, 1))])
    assert reader.count(target) == 1
    reader.channel.queue_delete(target)
    assert not reader.exists(target)

    with pytest.raises(AmqpPublishFailed, match="no queue took 1 message"):
        publisher.publish([OutgoingMessage(_message(target, 2))])
    assert not reader.exists(target)  # the failed batch did not bring it back

    retried = _message(target, 3)
    publisher.publish([OutgoingMessage(retried)])
    assert reader.exists(target)
    received = reader.drain(target, 1, timeout=5)
    assert [body["message_id"] for body in received] == [retried.message_id]
    assert reader.get(target) is None


def test_delayed_messages_wait_without_a_consumer_and_keep_their_order(reader, target, publisher):
    messages = [_message(target, n) for n in range(50)]
    for start in range(0, 50, 10):
        publisher.publish([OutgoingMessage(m, delay_ms=1000) for m in messages[start : start + 10]])
    time.sleep(1.5)  # nobody consumes the delay queue or the target meanwhile

    received = reader.drain(target, 50, timeout=6)
    ids = [body["message_id"] for body in received]
    assert set(ids) == {m.message_id for m in messages}
    assert len(ids) == 50
    # One delay, one queue: they expire, and are dead-lettered, in the order they were published.
    assert ids == [m.message_id for m in messages]
