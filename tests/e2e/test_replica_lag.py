"""Read-your-writes: login and /me right after verification while the replica is behind."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from harness import mailpit
from tests.e2e.test_auth import PASSWORD, get, login, new_address, post

ROOT = Path(__file__).resolve().parents[2]


def _replica_sql(sql: str) -> None:
    # Pausing replay takes a superuser: the local stack's postgres user over its socket.
    port = os.environ.get("SHOP_PG_REPLICA_PORT", "5433")
    subprocess.run(
        [
            "setpriv",
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "--",
            "/usr/lib/postgresql/15/bin/psql",
            "-X",
            "-q",
            "-h",
            str(ROOT / "var/run/pg"),
            "-p",
            port,
            "-d",
            "postgres",
            "-c",
            sql,
        ],
        check=True,
        capture_output=True,
    )


@contextmanager
def replica_paused() -> Iterator[None]:
    _replica_sql("SELECT pg_wal_replay_pause()")
    try:
        yield
    finally:
        _replica_sql("SELECT pg_wal_replay_resume()")


@pytest.mark.skipif(os.geteuid() != 0, reason="pausing the local replica needs root (to act as postgres)")
def test_login_and_me_right_after_verify_while_the_replica_lags(stack, settings):
    email = new_address()
    with replica_paused():
        assert post(stack, "/api/v1/auth/register", {"email": email, "password": PASSWORD}).status == 202
        code = mailpit.latest_code(email)
        assert post(stack, "/api/v1/auth/verify", {"email": email, "code": code}).status == 200
        with psycopg.connect(settings.databases["auth"].replica_url) as replica:
            lagging = replica.execute("SELECT count(*) FROM users WHERE email = %s", (email,)).fetchone()
        assert lagging == (0,)  # the replica really has not seen the account yet
        tokens = login(stack, email)
        me = get(stack, "/api/v1/auth/me", tokens["access_token"])
        assert me.status == 200
        assert me.json()["verified"] is True
