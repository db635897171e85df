"""Auth rules: email and password policy, verification codes, cooldowns. No I/O, no clock of its
own: every time-dependent rule takes `now`."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from uuid import UUID

from shop.domain import text

ADMIN_ROLE = "admin"
CODE_DIGITS = 6
CODE_TTL = timedelta(minutes=10)
MAX_CODE_ATTEMPTS = 5
RESEND_COOLDOWN = timedelta(seconds=60)
PASSWORD_MIN = 10
PASSWORD_MAX = 128
EMAIL_MAX = 254  # RFC 5321's limit on a forward path

# Deliberately loose: one @, something on both sides, a dot in the domain. Whether the address
# exists is settled by the verification email, not by a regex. What is refused is what cannot be in
# an unquoted address and would change how a mail header reads: RFC 5322's specials (< > ( ) [ ] \
# , ; : "), whitespace, control characters (C0 and C1) and invisible format characters (Unicode Cf:
# right-to-left overrides, zero widths, tags). In classes that the API's JSON Schema (ECMA-262,
# shop/http/schemas.py) reads as Python does (see shop/domain/text.py).
_NOT_IN_ADDRESS = rf'@<>()\[\]\\,;:"{text.CONTROL}{text.SPACE}{text.FORMAT}'
_ADDRESS_CHAR = f"[^{_NOT_IN_ADDRESS}]"
_LAST_LABEL_CHAR = f"[^.{_NOT_IN_ADDRESS}]"
# The whole text an email field may hold (whitespace around the address is trimmed); the API's
# schemas anchor this very pattern. At most EMAIL_MAX characters, counted as sent.
EMAIL_PATTERN = f"[{text.SPACE}]*{_ADDRESS_CHAR}+@{_ADDRESS_CHAR}+\\.{_LAST_LABEL_CHAR}+[{text.SPACE}]*"
_EMAIL = re.compile(EMAIL_PATTERN)
_CODE = re.compile(rf"[0-9]{{{CODE_DIGITS}}}")


class AuthRuleError(Exception):
    """A request that breaks an auth rule; `code` is the API's error code."""

    code = "invalid_request"


class InvalidEmail(AuthRuleError):
    code = "invalid_email"


class InvalidPassword(AuthRuleError):
    code = "invalid_password"


def normalize_email(raw: str) -> str:
    # The length as sent, before trimming: the API's schema can only count what it is sent.
    if len(raw) > EMAIL_MAX or not _EMAIL.fullmatch(raw):
        raise InvalidEmail("email must look like name@example.com")
    return raw.strip().lower()


def check_password_policy(password: str) -> None:
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise InvalidPassword(f"password must be {PASSWORD_MIN} to {PASSWORD_MAX} characters")


def looks_like_code(code: str) -> bool:
    return bool(_CODE.fullmatch(code))


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def code_for(pepper: str, code_id: UUID) -> str:
    """The verification code of the code record `code_id`, derived with the server's pepper.

    Derived rather than drawn and stored: the code then exists nowhere at rest (not in the auth
    database, not in the outbox row that asks the mail worker to send it, not in a backup), only in
    the email itself; the mail worker derives it again from the record's id when it renders the
    email. Without the pepper an id says nothing about its code. (2**64 mod 10**6 is the only bias:
    one in 10**13.)
    """
    digest = hmac.new(pepper.encode(), b"verification-code:" + code_id.bytes, hashlib.sha256).digest()
    return f"{int.from_bytes(digest[:8], 'big') % 10**CODE_DIGITS:0{CODE_DIGITS}d}"


def hash_code(pepper: str, user_id: UUID, code: str) -> str:
    """Keyed, and bound to the user: a code hash is useless for any other account or without the pepper."""
    return hmac.new(pepper.encode(), f"{user_id}:{code}".encode(), hashlib.sha256).hexdigest()


def codes_match(expected_hash: str, pepper: str, user_id: UUID, code: str) -> bool:
    return hmac.compare_digest(expected_hash, hash_code(pepper, user_id, code))


class CodeOutcome(Enum):
    VERIFIED = "verified"
    WRONG = "wrong"
    EXPIRED = "expired"
    BURNT = "burnt"


@dataclass(frozen=True)
class CodeState:
    expires_at: datetime
    attempts: int
    burnt: bool


@dataclass(frozen=True)
class CodeCheck:
    outcome: CodeOutcome
    attempts: int  # the attempt count to store
    burn: bool  # this check burns the code

    @property
    def verified(self) -> bool:
        return self.outcome is CodeOutcome.VERIFIED


def check_code(state: CodeState, matches: bool, now: datetime) -> CodeCheck:
    """Judges one submission. A burnt or expired code never verifies, even with the right digits;
    the fifth wrong try burns the code."""
    if state.burnt or state.attempts >= MAX_CODE_ATTEMPTS:
        return CodeCheck(CodeOutcome.BURNT, state.attempts, burn=False)
    if now >= state.expires_at:
        return CodeCheck(CodeOutcome.EXPIRED, state.attempts, burn=False)
    if matches:
        return CodeCheck(CodeOutcome.VERIFIED, state.attempts, burn=False)
    attempts = state.attempts + 1
    return CodeCheck(CodeOutcome.WRONG, attempts, burn=attempts >= MAX_CODE_ATTEMPTS)


def cooldown_remaining(
    last_sent_at: datetime | None, now: datetime, cooldown: timedelta = RESEND_COOLDOWN
) -> int:
    """Whole seconds until another email may go to the address (0: now). Rounded up, so a client
    that waits `Retry-After` seconds is never refused again."""
    if last_sent_at is None:
        return 0
    left = (last_sent_at + cooldown - now).total_seconds()
    return max(0, int(-(-left // 1)))


# --- failures the API reports (mapped to HTTP in shop/http/errors.py) ---------------------------


class InvalidCredentials(AuthRuleError):
    code = "invalid_credentials"


class EmailNotVerified(AuthRuleError):
    code = "email_not_verified"


class TooManyLoginAttempts(AuthRuleError):
    code = "too_many_attempts"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins; retry in {retry_after} s")
        self.retry_after = retry_after


class InvalidRefreshToken(AuthRuleError):
    code = "invalid_refresh_token"


class RefreshTokenReused(InvalidRefreshToken):
    """A spent refresh token came back: whoever holds the family is not to be trusted any more."""

    code = "refresh_token_reused"
