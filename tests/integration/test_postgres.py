"""The primary and its streaming replica, for real."""

from __future__ import annotations

import time
import uuid

import psycopg
import pytest

from shop.db.migrate import load_migrations, migrate_all
from shop.settings import CONTEXTS


def _wait_for(query_result, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = query_result()
        if value is not None or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


@pytest.mark.parametrize("context", CONTEXTS)
def test_a_write_on_the_primary_is_read_back_from_the_replica(settings, context):
    db = settings.databases[context]
    table = f"smoke_{uuid.uuid4().hex[:12]}"
    marker = str(uuid.uuid4())
    with psycopg.connect(db.primary_url, autocommit=True) as primary:
        primary.execute(f"CREATE TABLE {table} (marker text)")
        try:
            primary.execute(f"INSERT INTO {table} VALUES (%s)", (marker,))
            with psycopg.connect(db.replica_url, autocommit=True) as replica:
                assert replica.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)

                def read_back():
                    try:
                        row = replica.execute(f"SELECT marker FROM {table}").fetchone()
                    except psycopg.errors.UndefinedTable:
                        return None
                    return row[0] if row else None

                assert _wait_for(read_back) == marker
        finally:
            primary.execute(f"DROP TABLE {table}")


def test_the_replica_refuses_writes(settings):
    with (
        psycopg.connect(settings.databases["orders"].replica_url, autocommit=True) as replica,
        pytest.raises(psycopg.errors.ReadOnlySqlTransaction),
    ):
        replica.execute("CREATE TABLE must_fail (x int)")


def test_the_replica_streams_through_its_replication_slot(settings):
    with psycopg.connect(settings.databases["orders"].replica_url) as replica:
        # WAL received over the stream (NULL on a replica that only replays archived files).
        received = replica.execute("SELECT pg_last_wal_receive_lsn() IS NOT NULL").fetchone()
    with psycopg.connect(settings.databases["orders"].primary_url) as primary:
        slots = primary.execute("SELECT slot_name, active FROM pg_replication_slots").fetchall()
    assert received == (True,)
    # The slot keeps the WAL the replica still needs, even while the replica is down.
    assert ("shop_replica_1", True) in slots


def test_migrate_is_recorded_and_safe_to_rerun(settings):
    urls = {c: settings.databases[c].primary_url for c in CONTEXTS}
    migrate_all(urls)  # whatever `make` already applied, this brings every database up to date
    assert migrate_all(urls) == {c: [] for c in CONTEXTS}
    for context in CONTEXTS:
        with psycopg.connect(urls[context]) as conn:
            versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
            tables = {
                r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            }
        assert versions == [m.version for m in load_migrations(context)]
        assert {"outbox", "inbox", "schema_migrations"} <= tables


def test_each_context_role_cannot_open_another_contexts_database(settings):
    auth = settings.databases["auth"].primary_url
    orders_db_as_auth = auth.rsplit("/", 1)[0] + "/orders"
    with pytest.raises(psycopg.OperationalError, match="permission denied"):
        psycopg.connect(orders_db_as_auth).close()
