"""Auth handlers on the real `auth` primary and Redis: outbox, rotation races, throttles."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import timedelta

import psycopg
import pytest
import redis

from shop.db.unit_of_work import UnitOfWork
from shop.domain.auth import InvalidCredentials, InvalidRefreshToken, TooManyLoginAttempts, code_for
from shop.handlers.auth import (
    AuthPolicy,
    Login,
    Register,
    ResendCode,
    Verification,
    VerifyEmail,
    handle_login,
    handle_refresh,
    handle_register,
    handle_resend,
    handle_verify,
    pending_password_matches,
)
from shop.security.passwords import hash_password
from shop.security.throttle import AddressCooldowns, LoginLimiter
from tests.concurrency import run_together
from tests.integration.db_helpers import now

DATABASE = "auth"

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


def _outbox_for(pool, email: str) -> list[tuple]:
    with pool.connection() as conn:
        return conn.execute(
            "SELECT destination, topic, payload FROM outbox WHERE payload->'kwargs'->>'to' = %s", (email,)
        ).fetchall()


def _code_from_outbox(pool, email: str) -> str:
    """The code the mail worker will derive from the email command (the command holds no code)."""
    rows = _outbox_for(pool, email)
    return code_for(POLICY.code_pepper, uuid.UUID(rows[-1][2]["kwargs"]["context"]["code_id"]))


def _verified_user(pool) -> str:
    email = f"it-{uuid.uuid4().hex[:10]}@example.test"
    handle_register(Register(email, hash_password(PASSWORD)), UnitOfWork(pool), POLICY, now)
    verified = handle_verify(
        VerifyEmail(email, _code_from_outbox(pool, email)), UnitOfWork(pool), POLICY, now
    )
    assert verified is Verification.VERIFIED
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
    code = _code_from_outbox(pool, email)
    assert code not in stored[0]  # only the keyed hash is stored
    assert code not in json.dumps(payload)  # the email command names the code's record, not the code

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

    def refresh() -> str:
        try:
            handle_refresh(pair.refresh_token, UnitOfWork(pool), POLICY, now, FixedIssuer())
            return "ok"
        except InvalidRefreshToken as exc:
            return exc.code

    outcomes = run_together([refresh, refresh])
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


def _last_mail_sent_long_ago(pool, email: str) -> None:
    """As if the last email to the address went out more than a minute ago (the cooldown is over)."""
    with pool.connection() as conn:
        conn.execute(
            "UPDATE users SET last_mail_sent_at = last_mail_sent_at - interval '2 minutes' WHERE email = %s",
            (email,),
        )


def test_a_rival_registration_of_an_unverified_address_holds_no_password(pool):
    """Pre-hijacking: an attacker registers the victim's address (before or after the victim, inside
    the mail cooldown or after it); whoever verifies it ends with the password they chose, and the
    attacker, who never sees a code, holds no working password."""
    attacker_password = "attacker's password 1"
    for attacker_first in (True, False):
        email = f"it-{uuid.uuid4().hex[:10]}@example.test"
        first, second = (attacker_password, PASSWORD) if attacker_first else (PASSWORD, attacker_password)
        handle_register(Register(email, hash_password(first)), UnitOfWork(pool), POLICY, now)
        _last_mail_sent_long_ago(pool, email)  # the rival registration is not inside the cooldown
        handle_register(Register(email, hash_password(second)), UnitOfWork(pool), POLICY, now)
        code = _code_from_outbox(pool, email)  # the victim reads the latest code in their mailbox

        # With the code alone, nothing is decided: which registration is the victim's?
        plain = handle_verify(VerifyEmail(email, code), UnitOfWork(pool), POLICY, now)
        assert plain is Verification.PASSWORD_REQUIRED
        chosen = VerifyEmail(email, code, hash_password(PASSWORD))
        assert handle_verify(chosen, UnitOfWork(pool), POLICY, now) is Verification.VERIFIED
        assert handle_login(
            Login(email, PASSWORD, "it"), UnitOfWork(pool), POLICY, now, FixedIssuer(), NoThrottle()
        )
        attempt = Login(email, attacker_password, "it")
        with pytest.raises(InvalidCredentials):
            handle_login(attempt, UnitOfWork(pool), POLICY, now, FixedIssuer(), NoThrottle())


def test_a_rival_registration_inside_the_cooldown_is_not_dropped(pool):
    email = f"it-{uuid.uuid4().hex[:10]}@example.test"
    handle_register(Register(email, hash_password(PASSWORD)), UnitOfWork(pool), POLICY, now)
    handle_register(Register(email, hash_password("attacker's password 1")), UnitOfWork(pool), POLICY, now)
    assert len(_outbox_for(pool, email)) == 1  # no second email inside the cooldown...
    code = _code_from_outbox(pool, email)
    # ...but the address is contested: the owner's code alone does not settle the password.
    assert (
        handle_verify(VerifyEmail(email, code), UnitOfWork(pool), POLICY, now)
        is Verification.PASSWORD_REQUIRED
    )


def test_registering_again_with_the_same_password_contests_nothing(pool):
    email = f"it-{uuid.uuid4().hex[:10]}@example.test"
    handle_register(Register(email, hash_password(PASSWORD)), UnitOfWork(pool), POLICY, now)
    assert pending_password_matches(email, PASSWORD, UnitOfWork(pool))
    assert not pending_password_matches(email, "another password 1", UnitOfWork(pool))
    handle_register(
        Register(email, hash_password(PASSWORD), same_password=True), UnitOfWork(pool), POLICY, now
    )
    code = _code_from_outbox(pool, email)
    assert handle_verify(VerifyEmail(email, code), UnitOfWork(pool), POLICY, now) is Verification.VERIFIED
    assert handle_login(
        Login(email, PASSWORD, "it"), UnitOfWork(pool), POLICY, now, FixedIssuer(), NoThrottle()
    )
    # Once verified, nobody's password is compared: a verified address never matches.
    assert not pending_password_matches(email, PASSWORD, UnitOfWork(pool))


def test_resend_after_register_answers_alike_for_new_unverified_and_verified_addresses(settings, pool):
    """Register then resend must not tell a verified address from the others (it answered 202 for a
    verified one, 429 for the rest)."""
    cooldowns = AddressCooldowns(redis.Redis.from_url(settings.redis_url))
    pending = f"it-{uuid.uuid4().hex[:10]}@example.test"
    handle_register(Register(pending, hash_password(PASSWORD)), UnitOfWork(pool), POLICY, now)
    _last_mail_sent_long_ago(pool, pending)
    verified = _verified_user(pool)
    _last_mail_sent_long_ago(pool, verified)
    new = f"it-{uuid.uuid4().hex[:10]}@example.test"
    answers = {}
    for kind, email in {"new": new, "unverified": pending, "verified": verified}.items():
        handle_register(
            Register(email, hash_password(PASSWORD), same_password=True), UnitOfWork(pool), POLICY, now
        )
        answers[kind] = handle_resend(ResendCode(email), UnitOfWork(pool), POLICY, now, cooldowns)
    assert all(55 <= seconds <= 60 for seconds in answers.values()), answers
