"""The work of the auth commands. Each handler owns one unit of work on the `auth` primary;
actors (register, resend, verify) and gateway routes (login, refresh, logout) call these."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
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
    code_for,
    codes_match,
    cooldown_remaining,
    hash_code,
    looks_like_code,
)
from shop.domain.clock import Clock
from shop.domain.ids import uuid7
from shop.schemas.mail import encode_send_email
from shop.security.passwords import burn_equal_time, hash_password, needs_rehash, verify_password


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
    # The gateway found this to be the password the unverified account already has (a retried or
    # repeated registration): not a rival registration.
    same_password: bool = False


@dataclass(frozen=True)
class ResendCode:
    email: str


@dataclass(frozen=True)
class VerifyEmail:
    email: str
    code: str
    # The password the verifier wants the account to have, hashed by the gateway; None: keep the
    # registration's (allowed only while nobody else registered the address with another one).
    password_hash: str | None = None


class Verification(Enum):
    VERIFIED = "verified"
    INVALID_CODE = "invalid_code"  # wrong, expired, burnt, or no such address: one answer for all
    PASSWORD_REQUIRED = "password_required"  # the right code, but the address was contested


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
    """A new code replaces any live one; the email goes out through the outbox after commit. The
    code is derived from its record's id (`code_for`): the mail worker derives it again, so it is
    stored nowhere, the outbox row and the message included."""
    code_id = uuid7()
    code = code_for(policy.code_pepper, code_id)
    db.supersede_live_codes(uow.conn, user_id, now)
    db.insert_code(
        uow.conn, code_id, user_id, hash_code(policy.code_pepper, user_id, code), now, now + CODE_TTL
    )
    db.set_last_mail_sent(uow.conn, user_id, now)
    mail = encode_send_email(
        "verification_code",
        email,
        {"code_id": str(code_id), "expires_minutes": int(CODE_TTL.total_seconds() // 60)},
        f"verification-code:{code_id}",
    )
    uow.enqueue_actor(code_id, mail.queue, mail.actor_name, mail.kwargs)


def _email_notice(uow: UnitOfWork, user_id: UUID, email: str, now: datetime) -> None:
    notice_id = uuid7()
    db.set_last_mail_sent(uow.conn, user_id, now)
    mail = encode_send_email("already_registered", email, {}, f"notice:{notice_id}")
    uow.enqueue_actor(notice_id, mail.queue, mail.actor_name, mail.kwargs)


def handle_register(cmd: Register, uow: UnitOfWork, policy: AuthPolicy, clock: Clock) -> None:
    """Answers nothing the caller could use to tell known from unknown addresses: a new address
    gets an account and a code, an unverified one a fresh code, a verified one a notice. Mail to one
    address is sent at most once a minute, which also makes a redelivered message harmless.

    An unverified account keeps the password it was first registered with. Registered again with
    another one (by its owner who changed their mind, or by someone who wants to hold the password
    of the account the owner is about to verify: "pre-hijacking"), the address is contested, and
    whoever verifies it must say which password it gets (`VerifyEmail.password_hash`). That holds
    inside the mail cooldown too: a registration is never silently dropped."""
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
            cmd = Register(cmd.email, cmd.password_hash, same_password=False)
        if user.verified_at is None and not cmd.same_password:
            db.mark_contested(uow.conn, user.id, now)
        if cooldown_remaining(user.last_mail_sent_at, now):
            return
        if user.verified_at is not None:
            _email_notice(uow, user.id, cmd.email, now)
        else:
            _email_code(uow, user.id, cmd.email, policy, now)


def pending_password_matches(email: str, password: str, uow: UnitOfWork) -> bool:
    """Whether `password` is the one the unverified account of `email` was registered with (the
    gateway asks before a registration goes to the actor). As slow for every other address, known
    or not, so that the answer's timing tells nothing."""
    with uow:
        user = db.user_by_email(uow.conn, email)
    if user is None or user.verified_at is not None:
        burn_equal_time(password)
        return False
    return verify_password(user.password_hash, password)


def handle_resend(
    cmd: ResendCode, uow: UnitOfWork, policy: AuthPolicy, clock: Clock, cooldowns: Cooldowns
) -> int:
    """0 when a new code was sent (or would have been); else seconds until the next may be.

    Every address answers alike, whatever it is: unknown ones by a cooldown of their own (in
    Redis: they have no row), known ones by the last email the address was sent, a code or a
    notice. A verified address gets nothing, but its cooldown starts as if it had."""
    now = clock()
    with uow:
        user = db.user_by_email(uow.conn, cmd.email, for_update=True)
        if user is None:
            return cooldowns.try_start(cmd.email, int(RESEND_COOLDOWN.total_seconds()))
        remaining = cooldown_remaining(user.last_mail_sent_at, now)
        if remaining:
            return remaining
        if user.verified_at is None:
            _email_code(uow, user.id, cmd.email, policy, now)
        else:
            db.set_last_mail_sent(uow.conn, user.id, now)
        return 0


def handle_verify(cmd: VerifyEmail, uow: UnitOfWork, policy: AuthPolicy, clock: Clock) -> Verification:
    now = clock()
    with uow:
        user = db.user_by_email(uow.conn, cmd.email, for_update=True)
        if user is None:
            return Verification.INVALID_CODE
        code = db.live_code(uow.conn, user.id)
        if code is None:
            return Verification.INVALID_CODE
        matches = looks_like_code(cmd.code) and codes_match(
            code.code_hash, policy.code_pepper, user.id, cmd.code
        )
        if code.used_at is not None:
            # The same verification again (a retry, a redelivered message): same answer.
            return Verification.VERIFIED if matches else Verification.INVALID_CODE
        check = check_code(CodeState(code.expires_at, code.attempts, code.burnt_at is not None), matches, now)
        if check.verified:
            if cmd.password_hash is None and user.contested_at is not None:
                # The right code: the caller holds the mailbox, and may learn that much. Nothing is
                # spent; the same code with the password verifies.
                return Verification.PASSWORD_REQUIRED
            db.mark_code_used(uow.conn, code.id, now)
            db.mark_verified(uow.conn, user.id, now)
            if cmd.password_hash is not None:
                db.set_password_hash(uow.conn, user.id, cmd.password_hash, now)
            return Verification.VERIFIED
        if check.outcome is CodeOutcome.WRONG:
            db.record_code_attempt(uow.conn, code.id, check.attempts, now if check.burn else None)
        return Verification.INVALID_CODE


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
