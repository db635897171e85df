"""The failed-login counters on the real Redis: each counter is counted and given its window in one
step, and a counter that lost its TTL (only the INCR of an older two-command write landed) heals
instead of locking its account or client out for good."""

from __future__ import annotations

import uuid

import pytest
import redis

from shop.security.throttle import LOGIN_WINDOW_SECONDS, LoginLimiter


@pytest.fixture
def client(settings):
    connection = redis.Redis.from_url(settings.redis_url)
    yield connection
    connection.close()


def test_a_counter_at_the_limit_without_ttl_gets_its_window_back(client):
    email, address = f"{uuid.uuid4().hex}@example.test", f"test-{uuid.uuid4().hex}"
    limiter = LoginLimiter(client, per_account=3, per_client=1000)
    account = limiter.keys(email, address)["account"]
    client.set(account, 3)  # at the limit, and no TTL: the state a lost EXPIRE left behind
    try:
        wait = limiter.retry_after(email, address)
        assert 0 < wait <= LOGIN_WINDOW_SECONDS
        assert 0 < client.ttl(account) <= LOGIN_WINDOW_SECONDS  # healed: it ends with its window
    finally:
        client.delete(*limiter.keys(email, address).values())


def test_a_failure_on_a_counter_without_ttl_gives_it_one(client):
    email, address = f"{uuid.uuid4().hex}@example.test", f"test-{uuid.uuid4().hex}"
    limiter = LoginLimiter(client, per_account=100, per_client=1000)
    keys = limiter.keys(email, address)
    client.set(keys["client"], 7)
    try:
        limiter.record_failure(email, address)
        assert int(client.get(keys["client"])) == 8
        assert int(client.get(keys["account"])) == 1
        assert all(0 < client.ttl(key) <= LOGIN_WINDOW_SECONDS for key in keys.values())
    finally:
        client.delete(*keys.values())


def test_a_counter_keeps_the_window_its_first_failure_started(client):
    email, address = f"{uuid.uuid4().hex}@example.test", f"test-{uuid.uuid4().hex}"
    limiter = LoginLimiter(client, per_account=2, per_client=1000)
    keys = limiter.keys(email, address)
    try:
        limiter.record_failure(email, address)
        client.expire(keys["account"], 100)  # as if the first failure was long ago
        limiter.record_failure(email, address)
        assert 0 < client.ttl(keys["account"]) <= 100  # a later failure does not extend the window
        assert 0 < limiter.retry_after(email, address) <= 100
    finally:
        client.delete(*keys.values())
