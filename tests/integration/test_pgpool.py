"""The shop behind a real pgpool-II in front of the local primary and replica (issue 10, point 3).

The test starts Debian's pgpool-II (4.3) itself, on free ports, with everything it writes under a
temporary directory, and drives the shop's own code through it: the unit of work, the actors'
read-back after a commit, read-your-writes (`WriteFreshness` / `replica_has_replayed`), psycopg
without server-side prepared statements, and the readiness check.

Routing is made deterministic with pgpool's `app_name_redirect_preference_list`: a session whose
`application_name` (from its URL) is `shop-primary` reads from the primary (that is how the
deployment's primary URLs are meant to reach pgpool), one named `pgpool-test-standby` reads from the
standby, and any other session is load-balanced by weight. Pausing the replica's WAL replay makes
"the standby has not seen the write yet" certain instead of a race.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from shop.db.routing import replica_has_replayed
from shop.db.unit_of_work import UnitOfWork
from shop.domain.idempotency import request_fingerprint
from shop.domain.orders import OrderLine
from shop.domain.timers import TimerPolicy
from shop.handlers.orders import PlaceOrder, handle_place_order
from shop.handlers.products import CreateProduct, handle_create
from shop.http.freshness import WriteFreshness
from shop.observability.readiness import postgres_check
from shop.redis_clients import async_redis
from shop.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PRIMARY_APP = "shop-primary"  # the application_name the deployment's primary URLs carry
STANDBY_APP = "pgpool-test-standby"  # test only: pins a session's reads on the standby
NO_PREPARE: dict[str, Any] = {"prepare_threshold": None}  # how the shop connects (see the prepare test)
START_TIMEOUT = 15.0


def now() -> datetime:
    return datetime.now(UTC)


# --- pgpool-II, started by the module -----------------------------------------------------------


@dataclass(frozen=True)
class Pgpool:
    port: int
    log: Path
    credentials: dict[str, tuple[str, str]]  # database -> (user, password)

    def url(self, database: str, app: str | None = None) -> str:
        user, password = self.credentials[database]
        url = (
            f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:{self.port}/{database}"
        )
        return f"{url}?application_name={app}" if app else url

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "pgpool log (tail):\n" + "\n".join(text.splitlines()[-lines:])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pgpool_binary() -> str:
    found = shutil.which("pgpool") or shutil.which("pgpool", path="/usr/sbin:/usr/bin")
    if found is None:  # the project's way: Debian's package, its service held back by policy-rc.d
        subprocess.run(
            ["bash", "-c", f"cd {ROOT} && . ops/local/lib.sh && ensure_debs pgpool2"],
            check=True,
            capture_output=True,
            timeout=300,
        )
        found = shutil.which("pgpool", path="/usr/sbin:/usr/bin")
    assert found, "pgpool2 was installed but no pgpool binary is on /usr/sbin or /usr/bin"
    return found


def _server(url: str) -> tuple[str, int]:
    params = conninfo_to_dict(url)
    return str(params.get("host") or "127.0.0.1"), int(str(params.get("port") or 5432))


def pgpool_conf(
    directory: Path, port: int, pcp_port: int, primary: tuple[str, int], standby: tuple[str, int], check: str
) -> str:
    """The settings the shop needs from pgpool-II in streaming-replication mode; every one below the
    "Required" line was found necessary (or is pgpool's default and must stay so) by this module."""
    check_user, check_password, check_db = check.split(":")
    return f"""
# --- Local to this test: addresses, files, sizes ---
listen_addresses = '127.0.0.1'
port = {port}
socket_dir = '{directory}'
pcp_listen_addresses = ''
pcp_port = {pcp_port}
pcp_socket_dir = '{directory}'
wd_ipc_socket_dir = '{directory}'
pid_file_name = '{directory}/pgpool.pid'
logdir = '{directory}'
log_destination = 'stderr'
log_min_messages = warning
log_per_node_statement = on
use_watchdog = off
memory_cache_enabled = off
failover_on_backend_error = off
# Every pooled psycopg connection holds one pgpool child for its whole life: num_init_children
# must exceed the sum of the max_size of every pool pointing here. reserved_connections > 0 makes
# pgpool refuse a client over that ("too many clients") instead of leaving it waiting.
num_init_children = 16
max_pool = 2
reserved_connections = 1

backend_hostname0 = '{primary[0]}'
backend_port0 = {primary[1]}
backend_weight0 = 1
backend_flag0 = 'ALLOW_TO_FAILOVER'
backend_hostname1 = '{standby[0]}'
backend_port1 = {standby[1]}
backend_weight1 = 1
backend_flag1 = 'ALLOW_TO_FAILOVER'

# The servers ask TCP clients for scram-sha-256: pgpool must know each role's password to answer
# them, from pool_passwd (user:TEXTpassword or user:AES...; md5 entries cannot do SCRAM).
enable_pool_hba = off
pool_passwd = 'pool_passwd'

sr_check_period = 1
sr_check_user = '{check_user}'
sr_check_password = '{check_password}'
sr_check_database = '{check_db}'
health_check_period = 1
health_check_user = '{check_user}'
health_check_password = '{check_password}'
health_check_database = '{check_db}'
delay_threshold = 0

# --- Required by the shop ---
backend_clustering_mode = 'streaming_replication'
load_balance_mode = on
# A session keeps its load-balance node: `replica_has_replayed` asks one node whether it has
# replayed the caller's commit LSN and the caller then reads on that same connection. Chosen per
# statement, the check could be answered by the primary and the read by a lagging standby.
statement_level_load_balance = off
# A read after a write in the same transaction goes to the primary, where that transaction is
# (pgpool's default; 'off' would send it to the standby, which cannot see the uncommitted write).
disable_load_balance_on_write = 'transaction'
# With both function lists empty pgpool treats every VOLATILE function as a write and sends it to
# the primary, including pg_last_wal_replay_lsn(): the freshness check would then always be
# answered "replayed" by the primary whatever node the session reads from. Naming the functions
# that really must run on the primary turns that check into an ordinary load-balanced read, while
# pg_current_wal_lsn() (the unit of work's commit LSN; it fails on a standby), advisory locks (the
# relay's lease, migrations) and sequences still go to the primary. pg_is_in_recovery() becomes a
# read too: the readiness check then asks the node the session reads from.
write_function_list = 'nextval,setval,lastval,currval,pg_current_wal_.*,pg_.*advisory.*'
# Sessions named shop-primary read from the primary too: the shop names every primary connection so
# (shop.db.connections), so a read right after a commit (the actors' answers, the idempotent replay
# of an order) sees that commit. Test only: pgpool-test-standby pins a session's reads on the standby.
app_name_redirect_preference_list = '{PRIMARY_APP}:primary(1.0),{STANDBY_APP}:standby(1.0)'
"""


def _pool_nodes(url: str) -> list[dict[str, str]]:
    with psycopg.connect(url, connect_timeout=2, autocommit=True, **NO_PREPARE) as conn:
        cur = conn.execute("SHOW pool_nodes")
        names = [column.name for column in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


@pytest.fixture(scope="module")
def pgpool(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pgpool]:
    binary = _pgpool_binary()
    directory = tmp_path_factory.mktemp("pgpool")
    credentials: dict[str, tuple[str, str]] = {}
    for name, db in settings.databases.items():
        params = conninfo_to_dict(db.primary_url)
        credentials[name] = (str(params["user"]), str(params.get("password", "")))
    catalog = settings.databases["catalog"]
    primary, standby = _server(catalog.primary_url), _server(catalog.replica_url)
    user, password = credentials["catalog"]
    port, pcp_port = _free_port(), _free_port()
    conf = directory / "pgpool.conf"
    conf.write_text(pgpool_conf(directory, port, pcp_port, primary, standby, f"{user}:{password}:catalog"))
    (directory / "pool_passwd").write_text("".join(f"{u}:TEXT{p}\n" for u, p in set(credentials.values())))
    (directory / "pcp.conf").write_text("")
    (directory / "pool_hba.conf").write_text("")
    server = Pgpool(port, directory / "pgpool.log", credentials)
    command = [binary, "-n", "-D", "-f", str(conf), "-F", str(directory / "pcp.conf")]
    command += ["-a", str(directory / "pool_hba.conf")]
    with server.log.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        expected = {(str(primary[1]), "primary"), (str(standby[1]), "standby")}
        deadline = time.monotonic() + START_TIMEOUT
        seen: object = None
        while True:
            assert process.poll() is None, f"pgpool exited with {process.returncode}\n{server.tail()}"
            try:
                nodes = _pool_nodes(server.url("catalog"))
                seen = nodes
                if {(n["port"], n["role"]) for n in nodes if n["status"] == "up"} == expected:
                    break
            except psycopg.OperationalError as exc:
                seen = exc
            assert time.monotonic() < deadline, f"pgpool not ready: {seen}\n{server.tail()}"
            time.sleep(0.2)
        yield server
    finally:
        process.send_signal(signal.SIGINT)  # "fast" shutdown: SIGTERM ("smart") waits for clients
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


# --- The local replica: pausing its replay makes "not replayed yet" certain ----------------------


def _replica_sql(settings: Settings, sql: str) -> None:
    """As the postgres superuser over the stack's socket (pausing replay takes a superuser)."""
    port = _server(settings.databases["catalog"].replica_url)[1]
    psql = shutil.which("psql") or "/usr/lib/postgresql/15/bin/psql"
    command = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--", psql]
    command += ["-X", "-q", "-h", str(ROOT / "var/run/pg"), "-p", str(port), "-d", "postgres", "-c", sql]
    subprocess.run(command, check=True, capture_output=True, timeout=10)


def wait_for_replay(settings: Settings, timeout: float = 10.0) -> None:
    """Until the replica has replayed everything the primary had written when this was called."""
    catalog = settings.databases["catalog"]
    with psycopg.connect(catalog.primary_url, autocommit=True) as primary:
        row = primary.execute("SELECT pg_current_wal_lsn()::text").fetchone()
    assert row is not None
    deadline = time.monotonic() + timeout
    with psycopg.connect(catalog.replica_url, autocommit=True) as replica:
        while True:
            done = replica.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (row[0],)).fetchone()
            if done and done[0]:
                return
            assert time.monotonic() < deadline, f"the replica has not replayed up to {row[0]}"
            time.sleep(0.05)


@contextlib.contextmanager
def replay_paused(settings: Settings) -> Iterator[None]:
    wait_for_replay(settings)  # what was written before stays visible on the standby
    _replica_sql(settings, "SELECT pg_wal_replay_pause()")
    try:
        yield
    finally:
        _replica_sql(settings, "SELECT pg_wal_replay_resume()")


@pytest.fixture(autouse=True)
def _replica_replaying(settings: Settings) -> Iterator[None]:
    """Whatever a test did, the replica replays again afterwards."""
    yield
    _replica_sql(settings, "SELECT pg_wal_replay_resume()")


# --- Helpers --------------------------------------------------------------------------------------


def new_fields() -> dict[str, Any]:
    return {
        "sku": f"PGPOOL-{uuid.uuid4().hex[:10]}",
        "name": "Mug",
        "description": "",
        "price_cents": 999,
        "currency": "EUR",
        "stock": 5,
    }


def in_recovery(conn: psycopg.Connection[Any]) -> bool:
    """Where this session's reads go: `pg_is_in_recovery()` is a read for pgpool here (it is not in
    write_function_list), so it is answered by the session's load-balance node."""
    row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    assert row is not None
    return bool(row[0])


async def in_recovery_async(conn: psycopg.AsyncConnection[Any]) -> bool:
    cur = await conn.execute("SELECT pg_is_in_recovery()")
    row = await cur.fetchone()
    assert row is not None
    return bool(row[0])


# --- 1. The unit of work writes through pgpool ---------------------------------------------------


@pytest.mark.parametrize("app", [PRIMARY_APP, STANDBY_APP], ids=["reads-on-primary", "reads-on-standby"])
def test_the_unit_of_work_writes_through_pgpool_and_gets_the_commit_lsn(
    pgpool: Pgpool, settings: Settings, app: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Even a session whose reads go to the standby writes on the primary, and the commit LSN query
    # (pg_current_wal_lsn(), which a standby refuses) is sent to the primary.
    caplog.set_level(logging.WARNING, logger="shop.outbox")
    with ConnectionPool(pgpool.url("catalog", app), min_size=1, max_size=2, kwargs=NO_PREPARE) as pool:
        with pool.connection() as conn:
            assert in_recovery(conn) is (app == STANDBY_APP), pgpool.tail()
        uow = UnitOfWork(pool, track_lsn=True)
        try:
            product = handle_create(CreateProduct(new_fields()), uow, now)
        except psycopg.Error as exc:
            pytest.fail(f"handle_create through pgpool: {exc!r}\n{pgpool.tail()}")
    assert uow.committed
    assert uow.commit_lsn, pgpool.tail()
    with psycopg.connect(settings.databases["catalog"].primary_url) as primary:
        assert not bool(primary.execute("SELECT pg_is_in_recovery()").fetchone()[0])  # type: ignore[index]
        row = primary.execute("SELECT sku, version FROM products WHERE id = %s", (product.id,)).fetchone()
        outbox = primary.execute(
            "SELECT topic FROM outbox WHERE message_key = %s", (str(product.id),)
        ).fetchall()
        past = primary.execute("SELECT pg_current_wal_lsn() >= %s::pg_lsn", (uow.commit_lsn,)).fetchone()
    assert row == (product.sku, 1)
    assert outbox == [("product.created",)]
    assert past == (True,), "the commit LSN must be the primary's"
    # The NOTIFY that wakes the relay went through too (it only logs when it fails).
    assert not [r for r in caplog.records if "could not wake the relay" in r.getMessage()]


# --- Reads on the primary URL right after a commit -----------------------------------------------


@pytest.mark.parametrize(
    ("app", "routed_to_primary"),
    [(PRIMARY_APP, True), (STANDBY_APP, False)],
    ids=["primary-url-routed-to-primary", "primary-url-load-balanced-to-a-lagging-standby"],
)
def test_reads_on_the_primary_url_see_the_commit_only_when_pgpool_sends_them_to_the_primary(
    pgpool: Pgpool, settings: Settings, app: str, routed_to_primary: bool
) -> None:
    """Why the primary URLs carry application_name=shop-primary (app_name_redirect_preference_list):
    pgpool load-balances every read outside a writing transaction, also on a "primary" URL. The
    actors read the order back right after the commit (shop/actors/orders.py) and a replayed
    Idempotency-Key is looked up in a new transaction; on a lagging standby both miss."""
    orders = settings.databases["orders"]
    product = uuid.uuid4()
    with psycopg.connect(orders.primary_url) as primary:
        primary.execute(
            "INSERT INTO product_prices (product_id, sku, name, price_cents, currency, version)"
            " VALUES (%s, %s, 'Mug', 450, 'EUR', 1)",
            (product, f"PGPOOL-{product.hex[:8]}"),
        )
    user, lines = uuid.uuid4(), [OrderLine(product, 2)]
    body = {"items": [{"product_id": str(product), "quantity": 2}]}
    policy = TimerPolicy.from_seconds([3600], 24 * 3600)

    def place(pool: ConnectionPool) -> Any:
        command = PlaceOrder(uuid.uuid4(), user, "pgpool-key", request_fingerprint(body), lines)
        return handle_place_order(command, lambda: UnitOfWork(pool), now, policy)

    with (
        ConnectionPool(pgpool.url("orders", app), min_size=1, max_size=2, kwargs=NO_PREPARE) as pool,
        replay_paused(settings),
    ):
        first = place(pool)  # the writes themselves always reach the primary
        assert first.created
        with psycopg.connect(orders.primary_url) as direct:
            count = direct.execute("SELECT count(*) FROM orders WHERE id = %s", (first.order_id,)).fetchone()
        assert count == (1,)
        with pool.connection() as conn:  # as shop/actors/orders.py answers: a new transaction
            found = conn.execute("SELECT id FROM orders WHERE id = %s", (first.order_id,)).fetchone()
        assert (found is not None) is routed_to_primary, pgpool.tail()
        if routed_to_primary:
            again = place(pool)
            assert (again.order_id, again.created) == (first.order_id, False)
        else:
            # The replay lookup misses on the standby, the insert hits the primary's key, and the
            # retry's lookup misses again: the twin gets an error instead of its order.
            with pytest.raises(psycopg.errors.UniqueViolation):
                place(pool)


# --- 2. Read-your-writes through pgpool ----------------------------------------------------------


async def test_read_your_writes_through_pgpool(pgpool: Pgpool, settings: Settings) -> None:
    redis = async_redis(settings.redis_url, settings.redis_cluster)
    freshness = WriteFreshness(redis, "catalog")
    writer, stranger = uuid.uuid4(), uuid.uuid4()
    replica = AsyncConnectionPool(
        pgpool.url("catalog", STANDBY_APP), min_size=1, max_size=2, open=False, kwargs=NO_PREPARE
    )
    primary = AsyncConnectionPool(
        pgpool.url("catalog", PRIMARY_APP), min_size=1, max_size=2, open=False, kwargs=NO_PREPARE
    )
    write_pool = ConnectionPool(
        pgpool.url("catalog", PRIMARY_APP), min_size=1, max_size=2, open=True, kwargs=NO_PREPARE
    )
    sql = "SELECT sku FROM products WHERE id = %s"
    try:
        await replica.open(wait=True)
        await primary.open(wait=True)
        paused = replay_paused(settings)
        await asyncio.to_thread(paused.__enter__)
        try:
            uow = UnitOfWork(write_pool, track_lsn=True)
            product = await asyncio.to_thread(handle_create, CreateProduct(new_fields()), uow, now)
            lsn = uow.commit_lsn
            assert lsn, pgpool.tail()
            await freshness.remember(writer, lsn)

            # The writer's read: the standby has not replayed the commit, so the primary answers.
            async with freshness.connection(writer, replica, primary) as conn:
                assert not await in_recovery_async(conn)
                cur = await conn.execute(sql, (product.id,))
                assert await cur.fetchone() == (product.sku,), pgpool.tail()
            # Anyone else reads the standby, which really is behind.
            async with freshness.connection(stranger, replica, primary) as conn:
                assert await in_recovery_async(conn)
                cur = await conn.execute(sql, (product.id,))
                assert await cur.fetchone() is None

            # replica_has_replayed answers for the node the session reads from, whichever it is:
            # pinned to each node, then load-balanced by weight (no application_name).
            for app in (STANDBY_APP, PRIMARY_APP, None, None, None, None):
                url = pgpool.url("catalog", app)
                async with await psycopg.AsyncConnection.connect(url, **NO_PREPARE) as conn:
                    on_standby = await in_recovery_async(conn)
                    replayed = await replica_has_replayed(conn, lsn)
                    cur = await conn.execute(sql, (product.id,))
                    visible = await cur.fetchone() is not None
                assert replayed is not on_standby, f"{app}: on standby {on_standby}\n{pgpool.tail()}"
                assert visible is replayed, f"{app}: replayed {replayed}, row visible {visible}"
                if app == STANDBY_APP:
                    assert on_standby
                elif app == PRIMARY_APP:
                    assert not on_standby
        finally:
            await asyncio.to_thread(paused.__exit__, None, None, None)

        await asyncio.to_thread(wait_for_replay, settings)
        # Replayed: the writer reads the standby again, and sees the row there.
        async with freshness.connection(writer, replica, primary) as conn:
            assert await in_recovery_async(conn)
            assert await replica_has_replayed(conn, lsn)
            cur = await conn.execute(sql, (product.id,))
            assert await cur.fetchone() == (product.sku,)
    finally:
        write_pool.close()
        await replica.close()
        await primary.close()
        await redis.aclose()


# --- 3. No server-side prepared statements -------------------------------------------------------

# Why the shop connects with prepare_threshold=None: by default psycopg turns a query it has run 5
# times on a connection into a named server-side prepared statement, which lives in one server
# session. Behind PgBouncer in transaction mode the next transaction may run on another server
# connection, where the name does not exist ("prepared statement _pg3_0 does not exist"). pgpool-II
# keeps them working but routes a named statement to wherever it was parsed: with pgpool 4.3.5 a
# statement prepared on the standby was re-parsed on the primary after a write and then went to the
# primary in every later transaction too, silently ending load balancing for it (and pgpool's
# DISCARD ALL when it reuses a backend connection drops them all). With prepare_threshold=None
# every execution is an unnamed Parse/Bind/Execute that pgpool routes afresh.


def test_the_same_parameterised_query_many_times_without_prepared_statements(pgpool: Pgpool) -> None:
    sql = "SELECT %s::int + 1, pg_is_in_recovery()"
    with psycopg.connect(pgpool.url("catalog", STANDBY_APP), **NO_PREPARE) as conn:
        assert [conn.execute(sql, (i,)).fetchone() for i in range(30)] == [(i + 1, True) for i in range(30)]
        conn.execute("UPDATE products SET name = name WHERE false")  # a write: the rest of the tx
        assert [conn.execute(sql, (i,)).fetchone() for i in range(30)] == [(i + 1, False) for i in range(30)]
        conn.commit()
        # A new transaction reads the standby again: nothing is pinned to where it was parsed.
        assert [conn.execute(sql, (i,)).fetchone() for i in range(30)] == [(i + 1, True) for i in range(30)]
        assert conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone() == (0,)
        conn.rollback()
    with ConnectionPool(pgpool.url("catalog"), min_size=1, max_size=2, kwargs=NO_PREPARE) as pool:
        for i in range(30):
            with pool.connection() as conn:
                assert conn.execute("SELECT %s::int * 2", (i,)).fetchone() == (i * 2,), pgpool.tail()


async def test_the_same_parameterised_query_many_times_async(pgpool: Pgpool) -> None:
    async with AsyncConnectionPool(
        pgpool.url("catalog"), min_size=1, max_size=2, open=False, kwargs=NO_PREPARE
    ) as pool:
        for i in range(30):
            async with pool.connection() as conn:
                cur = await conn.execute("SELECT %s::int * 2", (i,))
                assert await cur.fetchone() == (i * 2,), pgpool.tail()


# --- 4. Readiness ----------------------------------------------------------------------------------


async def test_readiness_through_pgpool(pgpool: Pgpool, settings: Settings) -> None:
    databases = list(settings.databases)
    # The replica URLs name pgpool: any role will do (SHOP_PG_REPLICA_IS_STANDBY=false).
    await postgres_check([pgpool.url(db) for db in databases], 2, expect_replica=None)()
    # The primary URLs, routed to the primary by their application_name, pass the strict check.
    await postgres_check([pgpool.url(db, PRIMARY_APP) for db in databases], 2, expect_replica=False)()
    await postgres_check([pgpool.url(db, STANDBY_APP) for db in databases], 2, expect_replica=True)()


def test_the_shops_own_primary_connections_are_routed_to_the_primary(pgpool: Pgpool) -> None:
    """No application_name in the URL: the shop's connection options name it (shop.db.connections),
    so a plain pgpool URL is safe for the primary. Load balancing is 1:1 for other names, so twenty
    connections all on the primary is no accident (one chance in a million)."""
    from shop.db.connections import primary_options, replica_options

    url = pgpool.url("catalog")
    for _ in range(20):
        with psycopg.connect(url, **primary_options(url)) as conn:
            assert not in_recovery(conn), pgpool.tail()
    landed = set()
    for _ in range(20):
        with psycopg.connect(url, **replica_options(url)) as conn:
            landed.add(in_recovery(conn))
    assert landed == {False, True}  # replica connections are load-balanced over both
