"""The names and arguments of actor queues and of the delay queues of order timers, without any server."""

from __future__ import annotations

import pytest

from shop.actors.broker import (
    actor_queue_arguments,
    delay_label,
    delay_queue_arguments,
    delay_queue_name,
)


@pytest.mark.parametrize(
    ("delay_ms", "label"),
    [
        (14_400_000, "4h"),
        (5_400_000, "1h30m"),
        (90_000, "1m30s"),
        (1_500, "1s500ms"),
        (86_400_000, "1d"),
        (1, "1ms"),
        (999, "999ms"),
        (1_000, "1s"),
        (60_000, "1m"),
        (86_400_000 + 1, "1d1ms"),
        (79_200_000, "22h"),
        (172_800_000 + 3_600_000 + 60_000 + 1_000 + 1, "2d1h1m1s1ms"),
    ],
)
def test_delay_label(delay_ms, label):
    assert delay_label(delay_ms) == label


@pytest.mark.parametrize("delay_ms", [0, -1, -1_000, -86_400_000])
def test_a_delay_must_be_positive(delay_ms):
    with pytest.raises(ValueError, match="positive"):
        delay_label(delay_ms)
    with pytest.raises(ValueError, match="positive"):
        delay_queue_name("timers", delay_ms)


def test_different_delays_get_different_labels():
    delays = [1, 999, 1_000, 1_001, 60_000, 90_000, 3_600_000, 5_400_000, 14_400_000, 86_400_000]
    assert len({delay_label(d) for d in delays}) == len(delays)


def test_delay_queue_name():
    assert delay_queue_name("timers", 3000) == "timers.wait.3s"
    assert delay_queue_name("timers", 14_400_000) == "timers.wait.4h"
    # The dramatiq suffixes of a queue name do not leak into the delay queue's name.
    assert delay_queue_name("timers.DQ", 3000) == "timers.wait.3s"


def test_delay_queue_arguments():
    assert delay_queue_arguments("timers", 14_400_000) == {
        "x-queue-type": "quorum",
        "x-message-ttl": 14_400_000,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "timers",
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


def test_a_delay_queue_has_no_length_limit():
    # reject-publish with a limit would refuse timers; without one it only enables at-least-once.
    arguments = delay_queue_arguments("timers", 1000)
    assert "x-max-length" not in arguments
    assert "x-max-length-bytes" not in arguments


def test_actor_queue_arguments():
    assert actor_queue_arguments("mail") == {
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "mail.XQ",
        "x-queue-type": "quorum",
    }


def test_the_dramatiq_delay_queue_of_an_actor_dead_letters_to_the_same_place():
    assert actor_queue_arguments("mail.DQ") == actor_queue_arguments("mail")
