from __future__ import annotations

import time
import uuid

import redis


def test_set_nx_px_guards_one_holder_and_expires(settings):
    client = redis.Redis.from_url(settings.redis_url)
    key = f"smoke:lock:{uuid.uuid4()}"
    assert client.set(key, "first", nx=True, px=300) is True
    assert client.set(key, "second", nx=True, px=300) is None
    assert client.get(key) == b"first"
    assert 0 < client.pttl(key) <= 300
    time.sleep(0.4)
    assert client.set(key, "third", nx=True, px=300) is True
    client.delete(key)
