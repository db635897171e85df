"""Sent outbox rows are not kept forever: the relay that holds a database's lease deletes the rows
published longer ago than the retention (SHOP_OUTBOX_RETENTION), a batch at a time; rows still to
send and rows sent recently stay.

The old rows are written with ids below every real row's (negative), as rows written and sent long
ago would be: the first in the table."""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta
from typing import Any

import psycopg
from prometheus_client import REGISTRY

from shop.db.outbox import delete_published
from shop.relay import OutboxRelay

DAY = 86_400.0


def _write(conn: psycopg.Connection[Any], rows: dict[str, timedelta | None], topic: str) -> dict[str, int]:
    """{name: published this long ago, or None: not sent}, in this order, below every other id."""
    lowest = conn.execute("SELECT least(coalesce(min(id), 0), 0) FROM outbox").fetchone()
    assert lowest is not None
    ids = {}
    for n, (name, ago) in enumerate(rows.items()):
        ids[name] = lowest[0] - 1000 + n
        conn.execute(
            """
            INSERT INTO outbox (id, event_id, topic, message_key, payload, created_at, published_at)
            VALUES (%s, %s, %s, 'k', %s, now() - interval '3 days', now() - %s::interval)
            """,
            (ids[name], uuid.uuid4(), topic, json.dumps({"name": name}), ago),
        )
    return ids


def _left(conn: psycopg.Connection[Any], ids: dict[str, int]) -> set[str]:
    found = conn.execute("SELECT id FROM outbox WHERE id = ANY(%s)", (list(ids.values()),)).fetchall()
    return {name for name, id in ids.items() if (id,) in found}


def test_rows_sent_before_the_cutoff_are_deleted_and_no_other(settings):
    with psycopg.connect(settings.databases["auth"].primary_url, autocommit=True) as conn:
        ids = _write(
            conn,
            {  # in the order of their ids, as the relay sends them
                "sent 3 days ago": timedelta(days=3),
                "never sent": None,
                "sent 2 days ago": timedelta(days=2),
                "sent 25 hours ago": timedelta(hours=25),
                "sent 23 hours ago": timedelta(hours=23),
                "sent an hour ago": timedelta(hours=1),
                "never sent either": None,
            },
            topic="retention.test",
        )
        try:
            deleted = delete_published(conn, DAY, limit=2)  # a batch: the oldest rows first
            assert deleted == 1
            assert _left(conn, ids) == set(ids) - {"sent 3 days ago"}
            while delete_published(conn, DAY, limit=2):
                pass
            assert _left(conn, ids) == {
                "never sent",
                "sent an hour ago",
                "sent 23 hours ago",
                "never sent either",
            }
        finally:
            conn.execute("DELETE FROM outbox WHERE id = ANY(%s)", (list(ids.values()),))


def test_the_relay_holding_the_lease_deletes_what_is_past_the_retention(settings):
    url = settings.databases["catalog"].primary_url
    with psycopg.connect(url, autocommit=True) as conn:
        # Published: the relay has nothing to send of them.
        ids = _write(
            conn,
            {"sent 2 days ago": timedelta(days=2), "sent 2 hours ago": timedelta(hours=2)},
            topic="retention.test",
        )
        relay = OutboxRelay(
            {"catalog": url},
            {"bootstrap.servers": settings.kafka_bootstrap},
            poll_interval=0.2,
            retention=DAY,
            retention_interval=0.2,
        )
        relay.start()
        try:
            deadline = time.monotonic() + 30
            while "sent 2 days ago" in _left(conn, ids) and time.monotonic() < deadline:
                time.sleep(0.1)
            leader = REGISTRY.get_sample_value("shop_relay_leader", {"database": "catalog"})
            assert leader == 1, "another relay holds the catalog's lease: stop it and run again"
            assert _left(conn, ids) == {"sent 2 hours ago"}
            deleted = REGISTRY.get_sample_value("shop_relay_outbox_deleted_total", {"database": "catalog"})
            assert deleted is not None
            assert deleted >= 1
        finally:
            relay.stop()
            conn.execute("DELETE FROM outbox WHERE id = ANY(%s)", (list(ids.values()),))


def test_answers_of_commands_done_before_the_cutoff_are_forgotten_and_no_other(settings):
    from shop.db.commands import forget_answers, recorded_answer

    old, recent = f"message:{uuid.uuid4()}", f"message:{uuid.uuid4()}"
    with psycopg.connect(settings.databases["catalog"].primary_url, autocommit=True) as conn:
        for command_id, age in ((old, "2 days"), (recent, "1 hour")):
            conn.execute(
                "INSERT INTO command_answers (command_id, actor, answer, answered_at)"
                " VALUES (%s, 'adjust_stock', '{\"answer\": 1}', now() - %s::interval)",
                (command_id, age),
            )
        while forget_answers(conn, DAY, 500):
            pass
        assert recorded_answer(conn, old) is None
        assert recorded_answer(conn, recent) is not None
        conn.execute("DELETE FROM command_answers WHERE command_id = %s", (recent,))
