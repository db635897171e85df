"""Auth handlers on the real `auth` primary and Redis: outbox, rotation races, throttles."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
import redis
from psycopg_pool import ConnectionPool

from shop.db.unit_of_work import UnitOfWork
from shop.domain.auth import InvalidCredentials, InvalidRefreshToken, TooManyLoginAttempts
from shop.handlers.auth import (
    AuthPolicy,
    Login,
    Register,
    VerifyEmail,
    handle_login,
    handle_refresh,
    handle_register,
    handle_verify,
)
from shop.security.passwords import hash_password
from shop.security.throttle import AddressCooldowns, LoginLimiter

POLICY = AuthPolicy("test-pepper", timedelta(days=1))
PASSWORD = "correct horse battery staple"


class FixedIssuer:
    def issue(self, user_id, roles, email=None):
        return f"access-{user_id}-{','.join(roles)}", 900


class NoThrottle:
    def retry_after(self, email, client):
        return 0

    def record_failure(self, email, client):
        pass


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture(scope="module")
def pool(settings):
    with ConnectionPool(settings.databases["auth"].primary_url, min_size=1, max_size=4) as pool:
        yield pool


def _outbox_for(pool, email: str) -> list[tuple]:
    with pool.connection() as conn:
        return conn.execute(
            "SELECT destination, topic, payload FROM outbox WHERE payload->'kwargs'->>'to' = %s", (email,)
        ).fetchall()


def _code_from_outbox(pool, email: str) -> str:
    rows = _outbox_for(pool, email)
    return rows[-1][2]["kwargs"]["context"]["code"]


def _verified_user(pool) -> str:
    email = f"it-{uuid.uuid4().hex[:10]}@example.test"
    handle_register(Register(email, hash_password(PASSWORD)), UnitOfWork(pool), POLICY, now)
    assert handle_verify(VerifyEmail(email, _code_from_outbox(pool, email)), UnitOfWork(pool), POLICY, now)
    return email


def test_register_writes_the_user_the_code_and_the_email_command_in_one_transaction(pool):
    email = f"it-{uuid.uuid4().hex[:10]}@example.test"
    handle_register(Register(email, hash_password(PASSWORD)), UnitOfWork(pool), POLICY, now)
    (row,) = _outbox_for(pool, email)
    destination, queue, payload = row
    assert (destination, queue, payload["actor_name"]) == ("rabbitmq", "mail", "send_email")
    assert payload["kwargs"]["template"] == "verification_code"
    with pool.connection() as conn:
        stored = conn.execute(
            "SELECT c.code_hash FROM verification_codes c JOIN users u ON u.id = c.user_id"
            " WHERE u.email = %s",
            (email,),
        ).fetchone()
    assert stored is not None
    assert payload["kwargs"]["context"]["code"] not in stored[0]  # only the keyed hash is stored

    # A redelivered register message within the cooldown changes nothing and sends nothing.
    handle_register(Register(email, hash_password(PASSWORD)), UnitOfWork(pool), POLICY, now)
    assert len(_outbox_for(pool, email)) == 1


def test_a_failed_transaction_leaves_no_outbox_row(pool):
    email = f"it-{uuid.uuid4().hex[:10]}@example.test"

    class Boom(Exception):
        pass

    uow = UnitOfWork(pool)

    def fail_after_queueing_an_email() -> None:
        with uow:
            uow.enqueue_actor(uuid.uuid4(), "mail", "send_email", {"to": email})
            raise Boom

    with pytest.raises(Boom):
        fail_after_queueing_an_email()
    assert not uow.committed
    assert _outbox_for(pool, email) == []


def test_two_concurrent_refreshes_of_one_token_cannot_both_succeed(pool):
    email = _verified_user(pool)
    pair = handle_login(
        Login(email, PASSWORD, "it"), UnitOfWork(pool), POLICY, now, FixedIssuer(), NoThrottle()
    )
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def refresh() -> None:
        barrier.wait()
        try:
            handle_refresh(pair.refresh_token, UnitOfWork(pool), POLICY, now, FixedIssuer())
            outcomes.append("ok")
        except InvalidRefreshToken as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=refresh) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok", "refresh_token_reused"]


def test_login_failures_are_limited_per_account(settings, pool):
    email = _verified_user(pool)
    client = redis.Redis.from_url(settings.redis_url)
    limiter = LoginLimiter(client, per_account=3, per_client=1000)
    for _ in range(3):
        with pytest.raises(InvalidCredentials):
            handle_login(
                Login(email, "wrong password!", "it"), UnitOfWork(pool), POLICY, now, FixedIssuer(), limiter
            )
    with pytest.raises(TooManyLoginAttempts) as blocked:
        handle_login(Login(email, PASSWORD, "it"), UnitOfWork(pool), POLICY, now, FixedIssuer(), limiter)
    assert 3500 < blocked.value.retry_after <= 3600
    # Another account from the same client is not affected by this account's limit.
    other = _verified_user(pool)
    assert handle_login(Login(other, PASSWORD, "it"), UnitOfWork(pool), POLICY, now, FixedIssuer(), limiter)


def test_unknown_addresses_get_the_same_cooldown_as_known_ones(settings):
    cooldowns = AddressCooldowns(redis.Redis.from_url(settings.redis_url))
    email = f"nobody-{uuid.uuid4().hex[:10]}@example.test"
    assert cooldowns.try_start(email, 60) == 0
    assert 55 <= cooldowns.try_start(email, 60) <= 60


def test_the_replica_sees_the_new_account_soon_after(settings, pool):
    email = _verified_user(pool)
    with psycopg.connect(settings.databases["auth"].replica_url, autocommit=True) as replica:
        for _ in range(100):
            row = replica.execute(
                "SELECT verified_at IS NOT NULL FROM users WHERE email = %s", (email,)
            ).fetchone()
            if row == (True,):
                break
            threading.Event().wait(0.05)
    assert row == (True,)
