"""Running pgbench on scripts of our own: the baselines of the `orders` and `inventory` scenarios.

`run_pgbench` runs one script against one database for a while. `run_together` runs several at the
same time (one pgbench per database, as the order lifecycle needs: pgbench connects to one database
per run), each for a fixed number of script runs, and reports when each finished.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import psycopg

from bench import report
from shop.db.outbox import NOTIFY_CHANNEL

PGBENCH = "/usr/lib/postgresql/15/bin/pgbench"


def require_pgbench() -> None:
    if not Path(PGBENCH).exists():
        raise SystemExit(
            f"bench: no {PGBENCH}: bash -c '. ops/local/lib.sh && ensure_debs postgresql-contrib'"
        )


@dataclass(frozen=True)
class Run:
    """One pgbench: `script` on `db_url` with `clients` connections, for `seconds` or, when
    `transactions` is set, that many script runs per client."""

    db_url: str
    script: str
    variables: Mapping[str, str]
    clients: int
    name: str
    seconds: int = 0
    transactions: int = 0
    threads: int = field(default=0)

    def command(self, script_file: str) -> list[str]:
        threads = self.threads or min(self.clients, os.cpu_count() or 1)
        length = ["-t", str(self.transactions)] if self.transactions else ["-T", str(self.seconds)]
        command = [PGBENCH, "-n", "-M", "prepared", "-c", str(self.clients), "-j", str(threads), *length]
        command += ["-f", script_file]
        for key, value in self.variables.items():
            command += ["-D", f"{key}={value}"]
        return [*command, self.db_url]


def parse_output(run: Run, stdout: str) -> dict[str, Any]:
    """Transactions per second (one transaction = one run of the script), latency and counts, as
    pgbench reports them; `duration_s` = transactions / tps (the run's length without connecting)."""
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", stdout)
    latency = re.search(r"latency average = ([\d.]+) ms", stdout)
    processed = re.search(r"number of transactions actually processed: (\d+)", stdout)
    failed = re.search(r"number of failed transactions: (\d+)", stdout)
    if not tps:
        raise SystemExit(f"bench: no tps in pgbench's output:\n{stdout}")
    transactions = int(processed[1]) if processed else None
    rate = float(tps[1])
    return {
        "tool": report.pg_version_of(PGBENCH),
        "clients": run.clients,
        "threads": run.threads or min(run.clients, os.cpu_count() or 1),
        "seconds": run.seconds or None,
        "transactions_per_client": run.transactions or None,
        "tps": rate,
        "latency_avg_ms": float(latency[1]) if latency else None,
        "transactions": transactions,
        "duration_s": round(transactions / rate, 3) if transactions and rate else None,
        "failed": int(failed[1]) if failed else 0,
        "script": f"{run.name} (-M prepared)",
    }


def run_together(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """Every run started at once, each its own pgbench process; their results in the same order,
    each with `wall_s`, the seconds from the common start until that pgbench exited."""
    files = []
    procs: list[subprocess.Popen[str]] = []
    outputs: dict[int, tuple[str, str, float]] = {}

    def wait(n: int, proc: subprocess.Popen[str]) -> None:
        stdout, stderr = proc.communicate()
        outputs[n] = (stdout, stderr, time.monotonic() - started)

    try:
        for run in runs:
            with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as file:
                file.write(run.script)
            files.append(file.name)
        started = time.monotonic()
        for run, name in zip(runs, files, strict=True):
            procs.append(
                subprocess.Popen(run.command(name), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            )
        waiters = [threading.Thread(target=wait, args=(n, proc)) for n, proc in enumerate(procs)]
        for waiter in waiters:
            waiter.start()
        for waiter in waiters:
            waiter.join()
    finally:
        for proc in procs:
            if proc.poll() is None:  # interrupted: no pgbench outlives us
                proc.kill()
                proc.wait()
        for name in files:
            Path(name).unlink(missing_ok=True)
    results = []
    for n, (run, proc) in enumerate(zip(runs, procs, strict=True)):
        stdout, stderr, wall = outputs[n]
        if proc.returncode != 0:
            raise SystemExit(f"bench: pgbench ({run.name}) failed:\n{stdout}\n{stderr}")
        results.append({**parse_output(run, stdout), "wall_s": round(wall, 3)})
    return results


def run_pgbench(
    db_url: str, script: str, variables: Mapping[str, str], clients: int, seconds: int, name: str
) -> dict[str, Any]:
    """`script` with -M prepared (the cheapest way pgbench can send it), `clients` connections for
    `seconds`; transactions per second and latency as pgbench reports them."""
    (result,) = run_together([Run(db_url, script, variables, clients, name, seconds=seconds)])
    return result


# --- pieces of the scripts -----------------------------------------------------------------------

# A pipeline closed with nothing queued: psycopg's bare Sync, one round trip.
BARE_SYNC = "\\startpipeline\n\\endpipeline\n"

# After the commit, in autocommit (UnitOfWork._after_commit), one statement: the relay's wake-up
# when the unit wrote outbox rows, the notifications asked for, the commit's position when tracked.
WAKE_RELAY = f"SELECT pg_notify('{NOTIFY_CHANNEL}', '');"
WAKE_RELAY_WITH_LSN = f"SELECT pg_notify('{NOTIFY_CHANNEL}', ''), pg_current_wal_lsn()::text;"


def unit_end(after_commit: str) -> str:
    """A unit of work's end once its writes went out: COMMIT, the unit's pipeline closing (a bare
    Sync), the after-commit statement."""
    return f"COMMIT;\n{BARE_SYNC}{after_commit}\n"


class OutboxRow(NamedTuple):
    """One row of a unit's outbox: its key and payload are SQL expressions of the script."""

    destination: str
    topic: str
    key: str
    payload: str


def outbox_rows(table: str, rows: Sequence[OutboxRow], headers: str = "'{}'", published: bool = False) -> str:
    """The unit's outbox rows as shop/db/outbox.py insert_messages writes several: one INSERT ...
    SELECT FROM unnest, in order, into `table`; `headers` (SQL) on every row; `published`: marked
    sent already (now()), so that no relay sends them."""
    sent = (", published_at", ", now()") if published else ("", "")
    uuids = ", ".join("gen_random_uuid()" for _ in rows)
    payloads = ",\n         ".join(row.payload for row in rows)
    return f"""INSERT INTO {table} (event_id, destination, topic, message_key, payload, headers{sent[0]})
SELECT event_id, destination, topic, message_key, payload, headers{sent[1]}
  FROM unnest(
       ARRAY[{uuids}]::uuid[],
       ARRAY[{", ".join(f"'{row.destination}'" for row in rows)}]::text[],
       ARRAY[{", ".join(f"'{row.topic}'" for row in rows)}]::text[],
       ARRAY[{", ".join(row.key for row in rows)}]::text[],
       ARRAY[
         {payloads}]::jsonb[],
       ARRAY[{", ".join(headers for _ in rows)}]::jsonb[])
       WITH ORDINALITY AS m(event_id, destination, topic, message_key, payload, headers, n)
 ORDER BY n;
"""


# --- scratch rows for the scripts ---------------------------------------------------------------

# A copy of `outbox` (same columns, constraints and indexes, the partial index of unsent rows too)
# that no relay reads: the scripts write their outbox rows there, unsent as the shop writes them.
SCRATCH_OUTBOX = "pgbench_outbox"


@contextmanager
def scratch_outbox(db_url: str) -> Iterator[None]:
    """SCRATCH_OUTBOX in `db_url`'s database for the block's length (its own id sequence and the
    defaults the shop's inserts rely on); dropped, with every row in it, at the end."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {SCRATCH_OUTBOX}")
        conn.execute(f"CREATE TABLE {SCRATCH_OUTBOX} (LIKE outbox INCLUDING ALL EXCLUDING DEFAULTS)")
        conn.execute(f"CREATE SEQUENCE {SCRATCH_OUTBOX}_id_seq OWNED BY {SCRATCH_OUTBOX}.id")
        conn.execute(
            f"ALTER TABLE {SCRATCH_OUTBOX} ALTER id SET DEFAULT nextval('{SCRATCH_OUTBOX}_id_seq'),"
            " ALTER headers SET DEFAULT '{}'::jsonb, ALTER created_at SET DEFAULT now(),"
            " ALTER destination SET DEFAULT 'kafka'"
        )
    try:
        yield
    finally:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {SCRATCH_OUTBOX}")


@dataclass(frozen=True)
class Customers:
    """Customer ids of one pgbench run: `prefix` (the first 24 characters of a UUID) and 12 hex digits
    from the script's `:u`, so that each placement is a customer's (their unpaid orders, their lock)
    and every order of the run is found again by a range of user_id."""

    prefix: str

    @property
    def first(self) -> str:
        return self.prefix + "0" * 12

    @property
    def last(self) -> str:
        return self.prefix + "f" * 12

    @property
    def variables(self) -> dict[str, str]:
        return {"users": self.prefix}


@contextmanager
def scratch_customers(db_url: str) -> Iterator[Customers]:
    """Customers for the block; their orders (lines and timers cascade) and idempotency records are
    deleted at the end."""
    customers = Customers(str(uuid.uuid4())[:24])
    try:
        yield customers
    finally:
        with psycopg.connect(db_url, autocommit=True) as conn:
            bounds = (customers.first, customers.last)
            conn.execute("DELETE FROM idempotency_records WHERE user_id BETWEEN %s AND %s", bounds)
            conn.execute("DELETE FROM orders WHERE user_id BETWEEN %s AND %s", bounds)
