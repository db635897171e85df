"""`shop migrate`: plain SQL files per database, applied in order, recorded in a table.

Files live in `shop/db/migrations/<context>/NNNN_description.sql`; the tables every context keeps
alike (outbox, inbox, command answers, mail ledger) in `shop/db/migrations/shared/description.sql`,
applied by each context that has them under the version `SHARED_MIGRATIONS` gives. Each file runs in
its own transaction together with the row that records it, so a failed file leaves nothing half-applied.
An advisory lock lets several `shop migrate` run at once (two containers starting together) without
applying a file twice. A recorded file whose text has changed since is an error: history is never
rewritten in place; write a new file.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

import psycopg

from shop.db.connections import primary_options

log = logging.getLogger("shop.migrate")

_FILE_NAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")
# Any constant works; it only has to be the same for every migrator of the database.
_LOCK_ID = 7_301_947_112

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


# {context: {version: shared file name}}. Each context first had its own copy of these files, byte for
# byte the same; the versions are those the copies were applied under, so a database migrated then
# finds every shared file recorded already, under the same version, name and checksum.
SHARED_MIGRATIONS: Mapping[str, Mapping[int, str]] = {
    "auth": {
        1: "outbox_and_inbox",
        2: "outbox_destination",
        4: "outbox_notify_after_commit",
        5: "mail_deliveries",
        6: "command_answers",
        8: "mail_handed_over",
    },
    "catalog": {
        1: "outbox_and_inbox",
        2: "outbox_destination",
        5: "outbox_notify_after_commit",
        6: "command_answers",
    },
    "orders": {
        1: "outbox_and_inbox",
        2: "outbox_destination",
        7: "outbox_notify_after_commit",
        9: "mail_deliveries",
        10: "command_answers",
        12: "mail_handed_over",
    },
}


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def parse_migrations(files: Mapping[str, str]) -> list[Migration]:
    """Turns `{file name: SQL}` into migrations sorted by version; rejects bad names and duplicates."""
    found: dict[int, Migration] = {}
    for file_name, sql in files.items():
        match = _FILE_NAME.match(file_name)
        if not match:
            raise MigrationError(f"migration file {file_name!r} is not named NNNN_description.sql")
        version = int(match["version"])
        if version in found:
            raise MigrationError(f"two migrations have version {version:04d}")
        found[version] = Migration(version, match["name"], sql)
    return [found[v] for v in sorted(found)]


def pending_migrations(migrations: Iterable[Migration], applied: Mapping[int, str]) -> list[Migration]:
    """The migrations still to apply, given `{version: checksum}` of those already applied."""
    pending = []
    for migration in migrations:
        recorded = applied.get(migration.version)
        if recorded is None:
            pending.append(migration)
        elif recorded != migration.checksum:
            raise MigrationError(
                f"migration {migration.version:04d}_{migration.name} was changed after it was applied; "
                "add a new migration instead"
            )
    return pending


def with_shared(
    files: Mapping[str, str], versions: Mapping[int, str], shared: Mapping[str, str]
) -> dict[str, str]:
    """A context's `{file name: SQL}` with the shared files it applies, `{version: name}`, added."""
    result = dict(files)
    for version, name in versions.items():
        file_name = f"{version:04d}_{name}.sql"
        if file_name in result:
            raise MigrationError(f"{file_name} is both the context's own and a shared migration")
        result[file_name] = shared[name]
    return result


def _read_sql(folder: Traversable) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in folder.iterdir() if p.name.endswith(".sql")}


def load_migrations(context: str) -> list[Migration]:
    folder = resources.files("shop.db") / "migrations"
    shared = {name.removesuffix(".sql"): sql for name, sql in _read_sql(folder / "shared").items()}
    own = _read_sql(folder / context)
    return parse_migrations(with_shared(own, SHARED_MIGRATIONS.get(context, {}), shared))


def migrate_database(url: str, migrations: list[Migration]) -> list[Migration]:
    """Applies what is pending on one database; returns what it applied."""
    applied_now = []
    with psycopg.connect(url, autocommit=True, **primary_options(url)) as conn:
        conn.execute(_CREATE_TABLE)
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
        try:
            rows = conn.execute("SELECT version, checksum FROM schema_migrations").fetchall()
            for migration in pending_migrations(migrations, dict(rows)):
                with conn.transaction():
                    conn.execute(migration.sql.encode())  # bytes: the file is trusted SQL, not a literal
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                        (migration.version, migration.name, migration.checksum),
                    )
                applied_now.append(migration)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))
    return applied_now


def migrate_all(databases: Mapping[str, str]) -> dict[str, list[Migration]]:
    """`{context: primary URL}` -> `{context: migrations applied}`."""
    result = {}
    for context, url in databases.items():
        migrations = load_migrations(context)
        applied = migrate_database(url, migrations)
        result[context] = applied
        for m in applied:
            log.info("%s: applied %04d_%s", context, m.version, m.name)
    return result


__all__ = [
    "SHARED_MIGRATIONS",
    "Migration",
    "MigrationError",
    "migrate_all",
    "parse_migrations",
    "pending_migrations",
    "with_shared",
]
