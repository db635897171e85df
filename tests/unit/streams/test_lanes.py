"""A lane's batches without a broker: records in, (record, finished) out, the lane still alive."""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from typing import cast

from confluent_kafka import Producer

from shop.streams.lanes import Assignment, Lane


@dataclass
class Record:
    """What a lane reads of a consumed record."""

    partition_: int
    offset_: int
    topic_: str = "t"
    value_: bytes = b"{}"
    headers_: list[tuple[str, bytes]] = field(default_factory=list)

    def topic(self) -> str:
        return self.topic_

    def partition(self) -> int:
        return self.partition_

    def offset(self) -> int:
        return self.offset_

    def value(self) -> bytes:
        return self.value_

    def headers(self) -> list[tuple[str, bytes]]:
        return self.headers_

    def key(self) -> bytes | None:
        return None


def _run_lane(items, agent, batch_agent, assignment: Assignment) -> list[tuple[int, int, bool]]:
    done: queue.SimpleQueue = queue.SimpleQueue()
    no_producer = cast(Producer, None)  # nothing here is dead-lettered
    lane = Lane(
        0, {"t": agent}, no_producer, "dlt", 0.01, assignment, done, threading.Event(), {"t": batch_agent}
    )
    for record, generation in items:
        lane.put(record, generation)
    lane.start()
    lane.close()  # handles what was put, then stops
    assert not lane.alive()
    results = []
    while not done.empty():
        record, finished = done.get()
        results.append((record.partition(), record.offset(), finished))
    return results


def test_a_batch_left_with_one_owned_record_that_fails_goes_the_one_record_way():
    """Partition 0 was revoked while its record waited (its next owner reads it); the batch is left
    with partition 1's one record, which the batch agent fails: it is handled alone, and the lane
    lives on (it died of an IndexError, which stopped the streams process)."""
    assignment = Assignment()
    assignment.add([("t", 0), ("t", 1)])
    stale = assignment.generation(("t", 0))
    assignment.revoke([("t", 0)], timeout=0)
    handled: list[int] = []

    def batch_agent(messages, each):
        raise RuntimeError("the database went away")

    results = _run_lane(
        [(Record(0, 7), stale), (Record(1, 3), assignment.generation(("t", 1)))],
        lambda record: handled.append(record.offset()),
        batch_agent,
        assignment,
    )
    assert results == [(0, 7, False), (1, 3, True)]
    assert handled == [3]


def test_a_failed_batch_is_tried_again_in_halves_and_every_record_is_done_once_in_order():
    assignment = Assignment()
    assignment.add([("t", 0)])
    batches: list[list[int]] = []
    alone: list[int] = []

    def batch_agent(messages, each):
        offsets = [m.offset() for m in messages]
        batches.append(offsets)
        if 5 in offsets:
            raise ValueError("record 5 cannot be handled with others")

    results = _run_lane(
        [(Record(0, n), 0) for n in range(8)],
        lambda record: alone.append(record.offset()),
        batch_agent,
        assignment,
    )
    assert results == [(0, n, True) for n in range(8)]
    assert alone == [4, 5]  # only the failing record's last pair ended up one at a time
    assert batches[0] == list(range(8))
    assert [4, 5] in batches
    assert [6, 7] in batches
