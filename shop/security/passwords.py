"""Password hashing: Argon2id with OWASP's minimum cost (19 MiB, t=2, p=1).

Hashing is CPU-bound (tens of milliseconds): callers on an event loop run it on a thread.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verified against when the email is unknown, so that a wrong email costs as much as a wrong password.
_DUMMY_HASH = _HASHER.hash("a password no account has, to even out the timing")


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def burn_equal_time(password: str) -> None:
    """Spends the time of one verification for a login whose account does not exist."""
    verify_password(_DUMMY_HASH, password)


def needs_rehash(password_hash: str) -> bool:
    return _HASHER.check_needs_rehash(password_hash)
