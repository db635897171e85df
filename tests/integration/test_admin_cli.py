"""`shop admin grant|revoke EMAIL` against the real auth database, as an operator runs it."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import UTC, datetime

import psycopg

from shop.security.passwords import hash_password


def _shop(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shop", *args], capture_output=True, text=True)


def _roles(url: str, email: str) -> list[str]:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT roles FROM users WHERE email = %s", (email,)).fetchone()
    assert row is not None
    return list(row[0])


def test_grant_and_revoke_admin(settings):
    url = settings.databases["auth"].primary_url
    email = f"ops-{uuid.uuid4().hex[:10]}@example.test"
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO users (id, email, password_hash, verified_at) VALUES (%s, %s, %s, %s)",
            (uuid.uuid4(), email, hash_password("a long password"), datetime.now(UTC)),
        )
    granted = _shop("admin", "grant", email.upper())
    assert granted.returncode == 0, granted.stderr
    assert _roles(url, email) == ["customer", "admin"]
    assert _shop("admin", "grant", email).returncode == 0  # twice is harmless
    assert _roles(url, email) == ["customer", "admin"]
    assert _shop("admin", "revoke", email).returncode == 0
    assert _roles(url, email) == ["customer"]


def test_an_unknown_email_is_a_clear_error():
    result = _shop("admin", "grant", "nobody-here@example.test")
    assert result.returncode == 1
    assert "no account with email nobody-here@example.test" in result.stderr
    malformed = _shop("admin", "revoke", "not-an-email")
    assert malformed.returncode == 2
    assert "not an email address" in malformed.stderr
