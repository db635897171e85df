"""SQL of the auth context. Every query is parameterised; callers own the transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import class_row

from shop.db.connections import Conn


@dataclass(frozen=True)
class UserRow:
    id: UUID
    email: str
    password_hash: str
    roles: list[str]
    verified_at: datetime | None
    last_mail_sent_at: datetime | None
    created_at: datetime
    # Registered again with another password while unverified: verification must name the password.
    contested_at: datetime | None


@dataclass(frozen=True)
class CodeRow:
    id: UUID
    code_hash: str
    expires_at: datetime
    attempts: int
    burnt_at: datetime | None
    used_at: datetime | None


@dataclass(frozen=True)
class RefreshTokenRow:
    id: UUID
    family_id: UUID
    user_id: UUID
    expires_at: datetime
    used_at: datetime | None
    family_revoked_at: datetime | None


_USER_COLUMNS = "id, email, password_hash, roles, verified_at, last_mail_sent_at, created_at, contested_at"


def user_by_email(conn: Conn, email: str, for_update: bool = False) -> UserRow | None:
    lock = " FOR UPDATE" if for_update else ""
    with conn.cursor(row_factory=class_row(UserRow)) as cur:
        cur.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE email = %s{lock}", (email,))
        return cur.fetchone()


def user_by_id(conn: Conn, user_id: UUID) -> UserRow | None:
    with conn.cursor(row_factory=class_row(UserRow)) as cur:
        cur.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE id = %s", (user_id,))
        return cur.fetchone()


async def user_by_id_async(conn: psycopg.AsyncConnection[Any], user_id: UUID) -> UserRow | None:
    async with conn.cursor(row_factory=class_row(UserRow)) as cur:
        await cur.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE id = %s", (user_id,))
        return await cur.fetchone()


def insert_user(conn: Conn, user_id: UUID, email: str, password_hash: str, now: datetime) -> bool:
    """False when the address is taken (a concurrent registration won the unique index)."""
    cur = conn.execute(
        """
        INSERT INTO users (id, email, password_hash, created_at, updated_at) VALUES (%s, %s, %s, %s, %s)
        ON CONFLICT (email) DO NOTHING RETURNING id
        """,
        (user_id, email, password_hash, now, now),
    )
    return cur.fetchone() is not None


def set_password_hash(conn: Conn, user_id: UUID, password_hash: str, now: datetime) -> None:
    conn.execute(
        "UPDATE users SET password_hash = %s, updated_at = %s WHERE id = %s", (password_hash, now, user_id)
    )


def mark_contested(conn: Conn, user_id: UUID, now: datetime) -> None:
    conn.execute(
        "UPDATE users SET contested_at = coalesce(contested_at, %s), updated_at = %s WHERE id = %s",
        (now, now, user_id),
    )


def set_last_mail_sent(conn: Conn, user_id: UUID, now: datetime) -> None:
    conn.execute("UPDATE users SET last_mail_sent_at = %s WHERE id = %s", (now, user_id))


def mark_verified(conn: Conn, user_id: UUID, now: datetime) -> None:
    conn.execute(
        "UPDATE users SET verified_at = coalesce(verified_at, %s), updated_at = %s WHERE id = %s",
        (now, now, user_id),
    )


def grant_role(conn: Conn, email: str, role: str) -> bool:
    cur = conn.execute(
        """
        UPDATE users SET roles = CASE WHEN %s = ANY(roles) THEN roles ELSE array_append(roles, %s) END,
                         updated_at = now()
         WHERE email = %s RETURNING id
        """,
        (role, role, email),
    )
    return cur.fetchone() is not None


def revoke_role(conn: Conn, email: str, role: str) -> bool:
    cur = conn.execute(
        "UPDATE users SET roles = array_remove(roles, %s), updated_at = now() WHERE email = %s RETURNING id",
        (role, email),
    )
    return cur.fetchone() is not None


# --- verification codes ------------------------------------------------------------------------


def supersede_live_codes(conn: Conn, user_id: UUID, now: datetime) -> None:
    conn.execute(
        """
        UPDATE verification_codes SET superseded_at = %s
         WHERE user_id = %s AND used_at IS NULL AND burnt_at IS NULL AND superseded_at IS NULL
        """,
        (now, user_id),
    )


def insert_code(
    conn: Conn, code_id: UUID, user_id: UUID, code_hash: str, issued_at: datetime, expires_at: datetime
) -> None:
    conn.execute(
        """
        INSERT INTO verification_codes (id, user_id, code_hash, issued_at, expires_at)
        VALUES (%s, %s, %s, %s, %s)
        """,
        (code_id, user_id, code_hash, issued_at, expires_at),
    )


def live_code(conn: Conn, user_id: UUID) -> CodeRow | None:
    """The newest code that was not replaced by a later one (it may be used, burnt or expired), locked."""
    with conn.cursor(row_factory=class_row(CodeRow)) as cur:
        cur.execute(
            """
            SELECT id, code_hash, expires_at, attempts, burnt_at, used_at
              FROM verification_codes
             WHERE user_id = %s AND superseded_at IS NULL
             ORDER BY issued_at DESC
             LIMIT 1
               FOR UPDATE
            """,
            (user_id,),
        )
        return cur.fetchone()


def record_code_attempt(conn: Conn, code_id: UUID, attempts: int, burnt_at: datetime | None) -> None:
    conn.execute(
        "UPDATE verification_codes SET attempts = %s, burnt_at = %s WHERE id = %s",
        (attempts, burnt_at, code_id),
    )


def mark_code_used(conn: Conn, code_id: UUID, now: datetime) -> None:
    conn.execute(
        "UPDATE verification_codes SET used_at = coalesce(used_at, %s) WHERE id = %s", (now, code_id)
    )


# --- refresh tokens ----------------------------------------------------------------------------


def create_family(conn: Conn, family_id: UUID, user_id: UUID, now: datetime) -> None:
    conn.execute(
        "INSERT INTO refresh_token_families (id, user_id, created_at) VALUES (%s, %s, %s)",
        (family_id, user_id, now),
    )


def insert_refresh_token(
    conn: Conn, token_id: UUID, family_id: UUID, token_hash: bytes, issued_at: datetime, expires_at: datetime
) -> None:
    conn.execute(
        """
        INSERT INTO refresh_tokens (id, family_id, token_hash, issued_at, expires_at)
        VALUES (%s, %s, %s, %s, %s)
        """,
        (token_id, family_id, token_hash, issued_at, expires_at),
    )


def refresh_token_for_update(conn: Conn, token_hash: bytes) -> RefreshTokenRow | None:
    """The token and its family, both locked: two concurrent refreshes with one token serialise here."""
    with conn.cursor(row_factory=class_row(RefreshTokenRow)) as cur:
        cur.execute(
            """
            SELECT t.id, t.family_id, f.user_id, t.expires_at, t.used_at, f.revoked_at AS family_revoked_at
              FROM refresh_tokens t JOIN refresh_token_families f ON f.id = t.family_id
             WHERE t.token_hash = %s
               FOR UPDATE OF t, f
            """,
            (token_hash,),
        )
        return cur.fetchone()


def mark_refresh_token_used(conn: Conn, token_id: UUID, now: datetime) -> None:
    conn.execute("UPDATE refresh_tokens SET used_at = %s WHERE id = %s", (now, token_id))


def revoke_family(conn: Conn, family_id: UUID, reason: str, now: datetime) -> None:
    conn.execute(
        """
        UPDATE refresh_token_families SET revoked_at = coalesce(revoked_at, %s),
               revoked_reason = coalesce(revoked_reason, %s)
         WHERE id = %s
        """,
        (now, reason, family_id),
    )
