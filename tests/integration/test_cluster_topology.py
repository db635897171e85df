"""The code against the cluster topology of the Swarm deployment, with real servers on this machine:
a Redis Cluster of 3 masters and 3 replicas (Debian's redis-server, started here on free ports), and
a RabbitMQ URL list whose first node does not answer."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import dramatiq
import pytest
from dramatiq.results.backends.redis import RedisBackend

from harness.processes import free_port
from shop.actors.broker import create_broker
from shop.actors.publisher import OutgoingMessage, TransactionalPublisher
from shop.http.freshness import WriteFreshness
from shop.http.ratelimit import Policy, RedisRateLimiter
from shop.observability.readiness import postgres_check, rabbitmq_check, redis_check
from shop.redis_clients import async_redis, sync_redis
from shop.security.throttle import AddressCooldowns, LoginLimiter

PASSWORD = "cluster-secret"


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Six redis-server processes made into a cluster with redis-cli; yields a seed node's URL."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    assert server, "redis-server comes with the stack's Redis (make up)"
    assert cli, "redis-cli comes with the stack's Redis (make up)"
    directory: Path = tmp_path_factory.mktemp("redis-cluster")
    for attempt in range(3):
        ports = _node_ports(6)
        processes = _start_nodes(server, directory, ports)
        try:
            _wait(partial(_all_answer, cli, ports), "the six nodes to answer")
            break
        except AssertionError:
            # A port found free was taken before redis-server bound it (or its bus port was):
            # start again on other ports rather than fail on another test's luck.
            _stop(processes)
            if attempt == 2:
                raise
    try:
        nodes = [f"127.0.0.1:{port}" for port in ports]
        create = [cli, "-a", PASSWORD, "--no-auth-warning", "--cluster", "create", *nodes]
        subprocess.run(
            [*create, "--cluster-replicas", "1", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        _wait(lambda: all("cluster_state:ok" in _info(cli, port) for port in ports), "cluster_state:ok")
        yield f"redis://:{PASSWORD}@127.0.0.1:{ports[0]}/0"
    finally:
        _stop(processes)


def _start_nodes(server: str, directory: Path, ports: list[int]) -> list[subprocess.Popen[bytes]]:
    processes = []
    for port in ports:
        command = [server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory)]
        command += ["--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf"]
        command += ["--cluster-node-timeout", "3000", "--save", "", "--appendonly", "no"]
        command += ["--requirepass", PASSWORD, "--masterauth", PASSWORD]
        processes.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return processes


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(10)


def _node_ports(count: int) -> list[int]:
    """Free ports whose cluster bus ports (port + 10000) are free too, none of them shared."""
    taken: set[int] = set()
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        bus = port + 10_000
        if bus > 65_535 or {port, bus} & taken or not _free(bus):
            continue
        taken |= {port, bus}
        ports.append(port)
    return ports


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _all_answer(cli: str, ports: list[int]) -> bool:
    return all(_ping(cli, port) for port in ports)


def _ping(cli: str, port: int) -> bool:
    done = subprocess.run(
        [cli, "-p", str(port), "-a", PASSWORD, "--no-auth-warning", "ping"], capture_output=True, text=True
    )
    return done.stdout.strip() == "PONG"


def _info(cli: str, port: int) -> str:
    command = [cli, "-p", str(port), "-a", PASSWORD, "--no-auth-warning", "cluster", "info"]
    return subprocess.run(command, capture_output=True, text=True).stdout


def _wait(done: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"waited {timeout} s for {what}"
        time.sleep(0.1)


def test_the_cluster_spreads_the_shops_keys_over_its_three_masters(redis_cluster):
    client: Any = sync_redis(redis_cluster, cluster=True)
    try:
        masters = {node.name for node in client.get_primaries()}
        assert len(masters) == 3
        slots = {client.keyslot(f"auth:login-failures:account:{n}") for n in range(50)}
        assert len({client.get_node_from_key(f"k{slot}").name for slot in slots}) > 1
    finally:
        client.close()


async def test_rate_limits_readiness_and_freshness_on_the_cluster(redis_cluster):
    client = async_redis(redis_cluster, cluster=True)
    try:
        limiter = RedisRateLimiter(client, prefix=f"test-{uuid.uuid4().hex}")
        policy = Policy("orders", 3, 60)
        decisions = [await limiter.hit(policy, f"user:{n % 2}") for n in range(8)]
        # Two clients, keys in different slots: each has its own budget of 3.
        assert [d.allowed for d in decisions] == [True] * 6 + [False, False]
        await redis_check(client)()
        freshness = WriteFreshness(client)
        user = uuid.uuid4()
        await freshness.remember(user, "0/16B3748")
        assert await freshness.lsn_for(user) == "0/16B3748"
        # The order lock's release script: one key, routed to its slot.
        lock = f"orders:in-flight:{uuid.uuid4()}"
        assert await client.set(lock, "mine", nx=True, px=30_000)
        release = (
            "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
        )
        assert await client.eval(release, 1, lock, "theirs") == 0
        assert await client.eval(release, 1, lock, "mine") == 1
    finally:
        await client.aclose()


def test_login_throttle_and_cooldowns_on_the_cluster(redis_cluster):
    client = sync_redis(redis_cluster, cluster=True)
    try:
        email, address = f"{uuid.uuid4().hex}@example.test", f"198.51.100.{uuid.uuid4().int % 250}"
        throttle = LoginLimiter(client, per_account=2, per_client=100)
        assert throttle.retry_after(email, address) == 0
        throttle.record_failure(email, address)
        throttle.record_failure(email, address)
        assert throttle.retry_after(email, address) > 0  # the account's two failures, across slots
        cooldowns = AddressCooldowns(client)
        assert cooldowns.try_start(email, 60) == 0
        assert cooldowns.try_start(email, 60) > 0
    finally:
        client.close()


def test_actor_results_wait_on_the_cluster(redis_cluster):
    backend = RedisBackend(client=sync_redis(redis_cluster, cluster=True))
    message: dramatiq.Message[Any] = dramatiq.Message(
        queue_name="orders", actor_name="place_order", args=(), kwargs={}, options={}
    )
    backend.store_result(message, {"order": "o-1"}, 10_000)
    assert backend.get_result(message, block=True, timeout=2_000) == {"order": "o-1"}


async def test_rabbitmq_nodes_are_tried_in_order_until_one_answers(settings):
    dead = f"amqp://shop:shop@127.0.0.1:{free_port()}/shop"  # nothing listens there
    urls = f"{dead},{settings.rabbitmq_url}"
    await rabbitmq_check(urls, timeout=2)()
    queue = f"topology-{uuid.uuid4().hex[:8]}"
    publisher = TransactionalPublisher(urls)
    broker = create_broker(urls)
    try:
        message: dramatiq.Message[Any] = dramatiq.Message(
            queue_name=queue, actor_name="probe", args=(), kwargs={}, options={}
        )
        publisher.publish([OutgoingMessage(message)])
        broker.declare_queue(queue)
        channel = broker.channel
        method, _, body = channel.basic_get(queue, auto_ack=True)
        assert method is not None
        assert dramatiq.Message.decode(body).message_id == message.message_id
    finally:
        broker.channel.queue_delete(queue)
        broker.close()
        publisher.close()


async def test_behind_a_pool_the_replica_check_asks_only_that_it_answers(settings):
    primary = settings.databases["orders"].primary_url
    # A replica URL that a pool (pgpool-II) answers from the primary: refused when it must be a
    # standby, accepted when the settings say it may be a pool (SHOP_PG_REPLICA_IS_STANDBY=false).
    with pytest.raises(RuntimeError, match="is not a replica"):
        await postgres_check([primary], 2, expect_replica=True)()
    await postgres_check([primary], 2, expect_replica=None)()
    await postgres_check([settings.databases["orders"].replica_url], 2, expect_replica=True)()
