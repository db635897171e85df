"""The work of the auth commands. Each handler owns one unit of work on the `auth` primary;
actors (register, resend, verify) and gateway routes (login, refresh, logout) call these."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

from shop.db import auth as db
from shop.db.unit_of_work import UnitOfWork
from shop.domain.auth import (
    CODE_TTL,
    RESEND_COOLDOWN,
    CodeOutcome,
    CodeState,
    EmailNotVerified,
    InvalidCredentials,
    InvalidRefreshToken,
    RefreshTokenReused,
    TooManyLoginAttempts,
    check_code,
    codes_match,
    cooldown_remaining,
    hash_code,
    looks_like_code,
    new_code,
)
from shop.domain.ids import uuid7
from shop.security.passwords import burn_equal_time, hash_password, needs_rehash, verify_password

Clock = Callable[[], datetime]
MAIL_QUEUE = "mail"
SEND_EMAIL = "send_email"


class Cooldowns(Protocol):
    def try_start(self, email: str, seconds: int) -> int: ...


class LoginThrottle(Protocol):
    def retry_after(self, email: str, client: str) -> int: ...

    def record_failure(self, email: str, client: str) -> None: ...


class AccessTokenIssuer(Protocol):
    def issue(self, user_id: UUID, roles: Sequence[str], email: str | None = None) -> tuple[str, int]: ...


@dataclass(frozen=True)
class AuthPolicy:
    code_pepper: str
    refresh_token_ttl: timedelta


# --- commands ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Register:
    email: str  # normalised
    password_hash: str  # hashed by the gateway: a password never travels through the broker


@dataclass(frozen=True)
class ResendCode:
    email: str


@dataclass(frozen=True)
class VerifyEmail:
    email: str
    code: str


@dataclass(frozen=True)
class Login:
    email: str
    password: str
    client: str  # the caller's address, for the per-client failure limit


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int


# --- registration and verification (run by actors) -----------------------------------------------


def _email_code(uow: UnitOfWork, user_id: UUID, email: str, policy: AuthPolicy, now: datetime) -> None:
    """A new code replaces any live one; the email goes out through the outbox after commit."""
    code, code_id = new_code(), uuid7()
    db.supersede_live_codes(uow.conn, user_id, now)
    db.insert_code(
        uow.conn, code_id, user_id, hash_code(policy.code_pepper, user_id, code), now, now + CODE_TTL
    )
    db.set_last_mail_sent(uow.conn, user_id, now)
    uow.enqueue_actor(
        code_id,
        MAIL_QUEUE,
        SEND_EMAIL,
        {
            "template": "verification_code",
            "to": email,
            "context": {"code": code, "expires_minutes": int(CODE_TTL.total_seconds() // 60)},
            "dedupe_key": f"verification-code:{code_id}",
        },
    )


def _email_notice(uow: UnitOfWork, user_id: UUID, email: str, now: datetime) -> None:
    notice_id = uuid7()
    db.set_last_mail_sent(uow.conn, user_id, now)
    uow.enqueue_actor(
        notice_id,
        MAIL_QUEUE,
        SEND_EMAIL,
        {"template": "already_registered", "to": email, "context": {}, "dedupe_key": f"notice:{notice_id}"},
    )


def handle_register(cmd: Register, uow: UnitOfWork, policy: AuthPolicy, clock: Clock) -> None:
    """Answers nothing the caller could use to tell known from unknown addresses: a new address
    gets an account and a code, an unverified one a fresh code (the latest password wins until the
    address is proven), a verified one a notice. Mail to one address is sent at most once a minute,
    which also makes a redelivered message harmless."""
    now = clock()
    with uow:
        user = db.user_by_email(uow.conn, cmd.email, for_update=True)
        if user is None:
            user_id = uuid7()
            if db.insert_user(uow.conn, user_id, cmd.email, cmd.password_hash, now):
                _email_code(uow, user_id, cmd.email, policy, now)
                return
            user = db.user_by_email(uow.conn, cmd.email, for_update=True)  # lost a race: treat as known
            assert user is not None
        if cooldown_remaining(user.last_mail_sent_at, now):
            return
        if user.verified_at is not None:
            _email_notice(uow, user.id, cmd.email, now)
        else:
            db.set_password_hash(uow.conn, user.id, cmd.password_hash, now)
            _email_code(uow, user.id, cmd.email, policy, now)


def handle_resend(
    cmd: ResendCode, uow: UnitOfWork, policy: AuthPolicy, clock: Clock, cooldowns: Cooldowns
) -> int:
    """0 when a new code was sent (or would have been); else seconds until the next may be."""
    now = clock()
    with uow:
        user = db.user_by_email(uow.conn, cmd.email, for_update=True)
        if user is None or user.verified_at is not None:
            # Nothing to send, but the same cooldown as a real address: no enumeration by timing out.
            return cooldowns.try_start(cmd.email, int(RESEND_COOLDOWN.total_seconds()))
        remaining = cooldown_remaining(user.last_mail_sent_at, now)
        if remaining == 0:
            _email_code(uow, user.id, cmd.email, policy, now)
        return remaining


def handle_verify(cmd: VerifyEmail, uow: UnitOfWork, policy: AuthPolicy, clock: Clock) -> bool:
    now = clock()
    with uow:
        user = db.user_by_email(uow.conn, cmd.email, for_update=True)
        if user is None:
            return False
        code = db.live_code(uow.conn, user.id)
        if code is None:
            return False
        matches = looks_like_code(cmd.code) and codes_match(
            code.code_hash, policy.code_pepper, user.id, cmd.code
        )
        if code.used_at is not None:
            # The same verification again (a retry, a redelivered message): same answer.
            return matches
        check = check_code(CodeState(code.expires_at, code.attempts, code.burnt_at is not None), matches, now)
        if check.verified:
            db.mark_code_used(uow.conn, code.id, now)
            db.mark_verified(uow.conn, user.id, now)
            return True
        if check.outcome is CodeOutcome.WRONG:
            db.record_code_attempt(uow.conn, code.id, check.attempts, now if check.burn else None)
        return False


# --- tokens (run by the gateway, on a thread) ----------------------------------------------------


def _hash_refresh_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _issue_pair(
    uow: UnitOfWork,
    user_id: UUID,
    roles: Sequence[str],
    email: str,
    family_id: UUID,
    issuer: AccessTokenIssuer,
    policy: AuthPolicy,
    now: datetime,
) -> TokenPair:
    refresh_token = "rt_" + secrets.token_urlsafe(32)
    db.insert_refresh_token(
        uow.conn, uuid7(), family_id, _hash_refresh_token(refresh_token), now, now + policy.refresh_token_ttl
    )
    access_token, expires_in = issuer.issue(user_id, roles, email)
    return TokenPair(access_token, refresh_token, expires_in)


def handle_login(
    cmd: Login,
    uow: UnitOfWork,
    policy: AuthPolicy,
    clock: Clock,
    issuer: AccessTokenIssuer,
    throttle: LoginThrottle,
) -> TokenPair:
    retry_after = throttle.retry_after(cmd.email, cmd.client)
    if retry_after:
        raise TooManyLoginAttempts(retry_after)
    now = clock()
    with uow:
        user = db.user_by_email(uow.conn, cmd.email)
        if user is None:
            burn_equal_time(cmd.password)
        if user is None or not verify_password(user.password_hash, cmd.password):
            throttle.record_failure(cmd.email, cmd.client)
            raise InvalidCredentials("wrong email or password")
        # Only after the password proved the caller owns the account, or this would enumerate.
        if user.verified_at is None:
            raise EmailNotVerified("verify your email address first")
        if needs_rehash(user.password_hash):
            db.set_password_hash(uow.conn, user.id, hash_password(cmd.password), now)
        family_id = uuid7()
        db.create_family(uow.conn, family_id, user.id, now)
        return _issue_pair(uow, user.id, user.roles, user.email, family_id, issuer, policy, now)


def handle_refresh(
    refresh_token: str, uow: UnitOfWork, policy: AuthPolicy, clock: Clock, issuer: AccessTokenIssuer
) -> TokenPair:
    now = clock()
    reused = False
    with uow:
        row = db.refresh_token_for_update(uow.conn, _hash_refresh_token(refresh_token))
        if row is None or row.family_revoked_at is not None or row.expires_at <= now:
            raise InvalidRefreshToken("refresh token is unknown, expired or revoked")
        if row.used_at is not None:
            db.revoke_family(uow.conn, row.family_id, "reuse", now)
            reused = True  # raised after the commit, so the revocation sticks
        else:
            user = db.user_by_id(uow.conn, row.user_id)
            if user is None:
                raise InvalidRefreshToken("the account is gone")
            db.mark_refresh_token_used(uow.conn, row.id, now)
            pair = _issue_pair(uow, user.id, user.roles, user.email, row.family_id, issuer, policy, now)
    if reused:
        raise RefreshTokenReused("refresh token was already used; every session of this login is revoked")
    return pair


def handle_logout(refresh_token: str, uow: UnitOfWork, clock: Clock) -> None:
    """Revokes the token's family. Unknown and already revoked tokens are fine: the caller is out."""
    now = clock()
    with uow:
        row = db.refresh_token_for_update(uow.conn, _hash_refresh_token(refresh_token))
        if row is not None:
            db.revoke_family(uow.conn, row.family_id, "logout", now)
