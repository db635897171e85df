"""The relay killed in the middle of its work loses nothing; what it repeats keeps its event id."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import psycopg

from harness.processes import free_port
from tests.integration.db_helpers import unpublished
from tests.integration.kafka_helpers import consume, headers_of, scratch_topic, value_of

ROWS = 3000


def _start_relay() -> subprocess.Popen[bytes]:
    env = {**os.environ, "SHOP_RELAY_PORT": str(free_port())}
    return subprocess.Popen(
        [sys.executable, "-m", "shop", "run", "relay"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_a_killed_relay_loses_nothing(settings):
    url = settings.databases["catalog"].primary_url
    with scratch_topic(settings.kafka_bootstrap, partitions=3) as topic:
        ids = [uuid.uuid4() for _ in range(ROWS)]
        with psycopg.connect(url) as conn, conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO outbox (event_id, topic, message_key, payload) VALUES (%s, %s, %s, %s)",
                [(event_id, topic, f"k{n % 7}", json.dumps({"n": n})) for n, event_id in enumerate(ids)],
            )
        relay = _start_relay()
        deadline = time.monotonic() + 60
        while unpublished(url, topic) == ROWS and time.monotonic() < deadline:
            time.sleep(0.005)
        relay.send_signal(signal.SIGKILL)  # no goodbye: mid-batch, between produce and commit, wherever
        relay.wait()
        left = unpublished(url, topic)
        print(f"relay killed with {left} of {ROWS} rows unsent")
        assert 0 < left < ROWS

        relay = _start_relay()
        try:
            deadline = time.monotonic() + 60
            while unpublished(url, topic) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert unpublished(url, topic) == 0
        finally:
            relay.send_signal(signal.SIGTERM)
            relay.wait(30)

        messages = consume(settings.kafka_bootstrap, topic, ROWS * 2, timeout=15)
        seen: dict[str, int] = {}
        for message in messages:
            event_id = headers_of(message)["event_id"].decode()
            n = json.loads(value_of(message))["n"]
            # A repeat is the same event, with the same id, never a new one.
            assert seen.setdefault(event_id, n) == n
        assert set(seen) == {str(i) for i in ids}
        # Per key, the first delivery of each event comes in outbox order.
        firsts: dict[bytes | None, list[int]] = {}
        done: set[str] = set()
        for message in messages:
            event_id = headers_of(message)["event_id"].decode()
            if event_id in done:
                continue
            done.add(event_id)
            firsts.setdefault(message.key(), []).append(json.loads(value_of(message))["n"])
        assert all(values == sorted(values) for values in firsts.values())
