"""The composition root's per-process objects: made once, even by threads that ask together."""

from __future__ import annotations

import time

from shop.bootstrap import _made_once, build_dependencies
from shop.settings import Settings
from tests.concurrency import run_together


def test_threads_asking_together_get_one_object_made_once():
    made: list[str] = []

    @_made_once
    def pool(context: str) -> object:
        made.append(context)
        time.sleep(0.05)  # long enough for every other thread to ask meanwhile
        return object()

    got = run_together([lambda: pool("orders")] * 8)
    assert made == ["orders"]
    assert all(one is got[0] for one in got)
    assert pool("catalog") is not got[0]  # one per arguments
    assert made == ["orders", "catalog"]


def test_a_process_dependencies_hand_every_thread_the_same_redis_client():
    needs = build_dependencies(Settings.from_env({}))  # a Redis client connects on first command only
    clients = run_together([needs.redis] * 8)
    assert all(client is clients[0] for client in clients)
