from __future__ import annotations

from importlib import resources

import pytest

from shop.db.migrate import (
    SHARED_MIGRATIONS,
    MigrationError,
    load_migrations,
    parse_migrations,
    pending_migrations,
    with_shared,
)
from shop.settings import CONTEXTS


def test_migrations_are_ordered_by_version_not_by_listing_order():
    migrations = parse_migrations({"0002_b.sql": "B", "0001_a.sql": "A", "0010_c.sql": "C"})
    assert [m.version for m in migrations] == [1, 2, 10]
    assert migrations[0].name == "a"


@pytest.mark.parametrize("name", ["1_a.sql", "0001-a.sql", "0001_A.sql", "0001_a.txt.sql", "notes.sql"])
def test_badly_named_files_are_refused(name):
    with pytest.raises(MigrationError, match="NNNN_description"):
        parse_migrations({name: "SELECT 1"})


def test_two_files_with_one_version_are_refused():
    with pytest.raises(MigrationError, match="0001"):
        parse_migrations({"0001_a.sql": "A", "0001_b.sql": "B"})


def test_only_unapplied_migrations_are_pending():
    a, b = parse_migrations({"0001_a.sql": "A", "0002_b.sql": "B"})
    assert pending_migrations([a, b], {1: a.checksum}) == [b]
    assert pending_migrations([a, b], {1: a.checksum, 2: b.checksum}) == []


def test_an_applied_migration_that_was_edited_is_an_error():
    (a,) = parse_migrations({"0001_a.sql": "A"})
    with pytest.raises(MigrationError, match="changed after it was applied"):
        pending_migrations([a], {1: "another checksum"})


@pytest.mark.parametrize("context", CONTEXTS)
def test_every_context_ships_its_migrations(context):
    migrations = load_migrations(context)
    assert migrations
    assert migrations[0].version == 1


def test_shared_migrations_join_a_context_under_its_own_versions():
    shared = {"outbox": "O", "inbox": "I", "mail": "M"}
    files = with_shared({"0003_users.sql": "U"}, {1: "outbox", 2: "inbox"}, shared)
    assert files == {"0001_outbox.sql": "O", "0002_inbox.sql": "I", "0003_users.sql": "U"}


def test_a_shared_migration_that_is_also_the_context_s_own_is_refused():
    with pytest.raises(MigrationError, match=r"0001_outbox\.sql"):
        with_shared({"0001_outbox.sql": "A"}, {1: "outbox"}, {"outbox": "B"})


def test_a_shared_migration_is_the_same_migration_in_every_context_that_applies_it():
    by_name: dict[str, set[str]] = {}
    for context, shared in SHARED_MIGRATIONS.items():
        migrations = {m.version: m for m in load_migrations(context)}
        for version, name in shared.items():
            assert migrations[version].name == name
            by_name.setdefault(name, set()).add(migrations[version].checksum)
    assert all(len(checksums) == 1 for checksums in by_name.values())
    shared_files = resources.files("shop.db") / "migrations" / "shared"
    assert {p.name for p in shared_files.iterdir()} == {f"{name}.sql" for name in by_name}
