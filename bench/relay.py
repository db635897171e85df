"""`python -m bench.relay`: outbox rows per second through the relay, to Kafka and to RabbitMQ (issue 11).

1. Kafka: N rows (default 50,000) for a scratch topic of 6 partitions are written into the `orders`
   database's outbox in one statement, then a relay (shop.relay.OutboxRelay, in this process) is
   started and timed until none of them is unsent. The topic must then hold N records. Baseline:
   Kafka's own `ProducerPerformance` (kafka-tools jar) with acks=all and idempotence, N records of the
   relay's average value size.
2. RabbitMQ: M rows (default 20,000) of dramatiq messages (as `UnitOfWork.enqueue_actor` writes them)
   for a scratch quorum actor queue on a vhost of its own, timed the same way; the queue must then
   hold M messages. Baseline: a plain pika publisher with publisher confirms, one message at a time.

It refuses to run while another relay holds the `orders` lease or while that outbox has unsent rows
of its own (its relay would send them to the scratch vhost). Everything it made is removed at the
end: the scratch topics, the vhost and its outbox rows. Results: var/bench/relay.json and relay.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import subprocess
import time
import uuid
from functools import partial
from pathlib import Path
from typing import Any

import dramatiq
import pika
import psycopg
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from bench import report
from bench.processes import refuse_running_relays
from harness import progress
from harness.rabbitmq import create_vhost, delete_vhost, vhost_url
from shop.actors.broker import QUORUM, connection_parameters, declare_actor_queue
from shop.bootstrap import kafka_config
from shop.db.outbox import KAFKA, RABBITMQ
from shop.observability.tracing import TRACE_OPTION
from shop.relay import OutboxRelay
from shop.settings import Settings

VHOST = "shop-bench-relay"
PARTITIONS = 6
KAFKA_VERSION = "4.1.1"  # ops/local/lib.sh's; the broker's jars are in var/kafka/libs
KAFKA_LIBS = Path("var/kafka/libs")
KAFKA_TOOLS_DIR = Path("var/bench/kafka-tools")  # kafka-tools is not among the broker's jars
POLL = 0.2  # seconds between two backlog counts
say = partial(progress.say, "bench.relay")

# Order events shaped like the ones placement writes (a few hundred bytes of JSON), keyed by order.
_INSERT_KAFKA = """
INSERT INTO outbox (event_id, destination, topic, message_key, payload, headers)
SELECT gen_random_uuid(), %(destination)s, %(topic)s, o.id::text,
       jsonb_build_object(
           'type', 'order.placed', 'order_id', o.id::text, 'user_id', gen_random_uuid()::text,
           'total_cents', 2500 + n %% 1000, 'currency', 'EUR', 'occurred_at', now(),
           'lines', jsonb_build_array(
               jsonb_build_object('product_id', gen_random_uuid()::text, 'quantity', 1 + n %% 3,
                                  'unit_price_cents', 1250))),
       '{}'::jsonb
  FROM generate_series(1, %(count)s) AS n, LATERAL (SELECT gen_random_uuid() AS id) o
"""

# dramatiq messages as UnitOfWork.enqueue_actor writes them: actor, no args, kwargs.
_INSERT_RABBITMQ = """
INSERT INTO outbox (event_id, destination, topic, message_key, payload, headers)
SELECT gen_random_uuid(), %(destination)s, %(topic)s, NULL,
       jsonb_build_object('actor_name', 'bench_relay_noop', 'args', '[]'::jsonb,
                          'kwargs', jsonb_build_object('order_id', gen_random_uuid()::text, 'n', n)),
       '{}'::jsonb
  FROM generate_series(1, %(count)s) AS n
"""


# --- preconditions -------------------------------------------------------------------------------


def check_no_relay(db_url: str) -> None:
    """Stops the benchmark if another relay holds the lease or the outbox has a backlog of its own."""
    refuse_running_relays({"orders": db_url}, "bench.relay")
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM outbox WHERE published_at IS NULL").fetchone()
        if row and row[0]:
            raise SystemExit(
                f"bench.relay: the `orders` outbox has {row[0]} unsent row(s) of its own; the benchmark's"
                " relay would publish them too (RabbitMQ ones into its scratch vhost). Let a relay drain"
                " them first (`shop run relay`)."
            )


# --- the relay, timed ----------------------------------------------------------------------------


def insert_rows(conn: psycopg.Connection[Any], sql: str, destination: str, topic: str, count: int) -> float:
    started = time.monotonic()
    with conn.transaction():
        conn.execute(sql, {"destination": destination, "topic": topic, "count": count})
    return time.monotonic() - started


def unsent(conn: psycopg.Connection[Any], topic: str) -> int:
    row = conn.execute(
        "SELECT count(*) FROM outbox WHERE published_at IS NULL AND topic = %s", (topic,)
    ).fetchone()
    return int(row[0]) if row else 0


def time_relay(
    settings: Settings,
    conn: psycopg.Connection[Any],
    topic: str,
    count: int,
    rabbitmq_url: str | None,
    batch_size: int,
    timeout: float,
) -> float:
    """Seconds from the relay's start until no row of `topic` is unsent."""
    relay = OutboxRelay(
        {"orders": settings.databases["orders"].primary_url},
        kafka_config(settings),
        rabbitmq_url=rabbitmq_url,
        batch_size=batch_size,
    )
    started = time.monotonic()
    relay.start()
    try:
        last_print = started
        while (left := unsent(conn, topic)) > 0:
            now = time.monotonic()
            if now - started > timeout:
                raise SystemExit(f"bench.relay: {left} of {count} rows still unsent after {timeout:.0f} s")
            if not relay.alive():
                raise SystemExit("bench.relay: the relay's thread died (see the log above)")
            if now - last_print >= 2:
                done = count - left
                print(f"  {done:,}/{count:,} sent, {done / (now - started):,.0f} rows/s", flush=True)
                last_print = now
            time.sleep(POLL)
        return time.monotonic() - started
    finally:
        relay.stop()


# --- Kafka ---------------------------------------------------------------------------------------


def create_topics(admin: AdminClient, names: list[str]) -> None:
    futures = admin.create_topics(
        [NewTopic(n, num_partitions=PARTITIONS, replication_factor=1) for n in names], operation_timeout=30
    )
    for future in futures.values():
        future.result(timeout=30)


def delete_topics(admin: AdminClient, names: list[str]) -> None:
    for name, future in admin.delete_topics(names, operation_timeout=30).items():
        try:
            future.result(timeout=30)
        except Exception as exc:  # cleaning up: report, go on
            say(f"could not delete topic {name}: {exc}")


def topic_records(settings: Settings, topic: str) -> int:
    """Sum of the partitions' high watermarks (no transactions: one offset per record)."""
    consumer = Consumer(kafka_config(settings, **{"group.id": f"{topic}-check", "enable.auto.commit": False}))
    try:
        total = 0
        for partition in range(PARTITIONS):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            total += high - low
        return total
    finally:
        consumer.close()


def kafka_value_size(conn: psycopg.Connection[Any], topic: str) -> int:
    """Average size of the values the relay produces (OutboxRow.value: compact JSON of the payload)."""
    rows = conn.execute("SELECT payload FROM outbox WHERE topic = %s LIMIT 1000", (topic,)).fetchall()
    sizes = [len(json.dumps(r[0], separators=(",", ":")).encode()) for r in rows]
    return round(sum(sizes) / len(sizes))


def kafka_tools_classpath() -> str:
    """The broker's jars plus kafka-tools (ProducerPerformance), fetched once from Maven Central."""
    jar = KAFKA_TOOLS_DIR / f"kafka-tools-{KAFKA_VERSION}.jar"
    if not jar.is_file():
        say(f"fetching org.apache.kafka:kafka-tools:{KAFKA_VERSION} (Maven Central) into {KAFKA_TOOLS_DIR}")
        subprocess.run(
            [
                "mvn",
                "-B",
                "-q",
                "-f",
                "ops/local/kafka/pom.xml",  # for its pinned maven-dependency-plugin
                "dependency:copy",
                f"-Dartifact=org.apache.kafka:kafka-tools:{KAFKA_VERSION}",
                f"-DoutputDirectory={KAFKA_TOOLS_DIR.resolve()}",
            ],
            check=True,
        )
    if not (KAFKA_LIBS / f"kafka-clients-{KAFKA_VERSION}.jar").is_file():
        raise SystemExit(f"bench.relay: no Kafka jars in {KAFKA_LIBS} (run `make up` first)")
    return f"{KAFKA_LIBS.resolve()}/*:{jar.resolve()}"


_PERF_LINE = re.compile(r"(\d+) records sent, ([\d.]+) records/sec .*?([\d.]+) ms avg latency")


def kafka_baseline(settings: Settings, topic: str, count: int, size: int) -> dict[str, Any]:
    command = [
        "java",
        "-Xmx512m",
        "-cp",
        kafka_tools_classpath(),
        "org.apache.kafka.tools.ProducerPerformance",
        "--topic",
        topic,
        "--num-records",
        str(count),
        "--record-size",
        str(size),
        "--throughput",
        "-1",
        "--producer-props",
        f"bootstrap.servers={settings.kafka_bootstrap}",
        "acks=all",
        "enable.idempotence=true",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    lines = [line for line in done.stdout.splitlines() if _PERF_LINE.search(line)]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"bench.relay: ProducerPerformance failed:\n{done.stdout}\n{done.stderr[-2000:]}")
    match = _PERF_LINE.search(lines[-1])
    assert match is not None
    return {
        "tool": "org.apache.kafka.tools.ProducerPerformance (acks=all, enable.idempotence=true)",
        "records": int(match.group(1)),
        "record_size": size,
        "rows_per_second": float(match.group(2)),
        "avg_latency_ms": float(match.group(3)),
        "final_line": lines[-1].strip(),
    }


# --- RabbitMQ ------------------------------------------------------------------------------------


def queue_depth(url: str, queue: str) -> int:
    connection = pika.BlockingConnection(connection_parameters(url))
    try:
        method = connection.channel().queue_declare(queue=queue, passive=True)
        return int(method.method.message_count)
    finally:
        connection.close()


def declare_queues(url: str, actor_queue: str, baseline_queue: str) -> None:
    connection = pika.BlockingConnection(connection_parameters(url))
    try:
        channel = connection.channel()
        declare_actor_queue(channel, actor_queue)
        channel.queue_declare(queue=baseline_queue, durable=True, arguments=dict(QUORUM))
    finally:
        connection.close()


def rabbitmq_body_size(conn: psycopg.Connection[Any], queue: str) -> int:
    """Average size of the dramatiq messages the relay publishes for these rows (shop.relay)."""
    rows = conn.execute(
        "SELECT event_id, payload, created_at FROM outbox WHERE topic = %s LIMIT 500", (queue,)
    ).fetchall()
    sizes = []
    for event_id, payload, created_at in rows:
        message: dramatiq.Message[Any] = dramatiq.Message(
            queue_name=queue,
            actor_name=payload["actor_name"],
            args=tuple(payload["args"]),
            kwargs=payload["kwargs"],
            options={TRACE_OPTION: {}},
            message_id=str(event_id),
            message_timestamp=int(created_at.timestamp() * 1000),
        )
        sizes.append(len(message.encode()))
    return round(sum(sizes) / len(sizes))


def rabbitmq_baseline(url: str, queue: str, count: int, size: int) -> dict[str, Any]:
    connection = pika.BlockingConnection(connection_parameters(url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        body = b"x" * size
        properties = pika.BasicProperties(delivery_mode=2)
        started = time.monotonic()
        for _ in range(count):
            channel.basic_publish(exchange="", routing_key=queue, body=body, properties=properties)
        seconds = time.monotonic() - started
    finally:
        connection.close()
    return {
        "tool": "pika BlockingConnection, confirm_delivery, one persistent message at a time",
        "records": count,
        "record_size": size,
        "seconds": round(seconds, 2),
        "rows_per_second": round(count / seconds, 1),
    }


# --- the scenario --------------------------------------------------------------------------------


def relayed(
    rows: int, seconds: float, size: dict[str, int], where: str, held: dict[str, int]
) -> dict[str, Any]:
    """The relay's figures for `rows` sent in `seconds`; `held`: what `where` (the topic or the queue)
    then holds, e.g. {"records_in_topic": n}."""
    (found,) = held.values()
    figures: dict[str, Any] = {
        "rows": rows,
        **size,
        "seconds": round(seconds, 2),
        "rows_per_second": round(rows / seconds, 1),
        **held,
        "none_lost": found == rows,
    }
    say(f"relay → {where}: {figures['rows_per_second']:,.0f} rows/s; it holds {found:,}")
    if found != rows:
        say(f"WARNING: expected {rows:,} in {where}, found {found:,}")
    return figures


def run(kafka_rows: int, rabbitmq_rows: int, batch_size: int, timeout: float) -> dict[str, Any]:
    settings = Settings.from_env(os.environ)
    db_url = settings.databases["orders"].primary_url
    check_no_relay(db_url)
    suffix = uuid.uuid4().hex[:8]
    topic, baseline_topic = f"bench-relay-{suffix}", f"bench-relay-perf-{suffix}"
    queue, baseline_queue = f"bench-relay-actor-{suffix}", f"bench-relay-confirms-{suffix}"
    rabbit_url = vhost_url(settings.rabbitmq_url, VHOST)
    admin = AdminClient(kafka_config(settings))
    results: dict[str, Any] = {"batch_size": batch_size, "machine": report.machine(db_url)}
    started = time.monotonic()
    vhost_made = False
    try:
        with psycopg.connect(db_url, autocommit=True) as conn:
            # 1. Kafka.
            say(f"Kafka: topics {topic} and {baseline_topic} ({PARTITIONS} partitions)")
            create_topics(admin, [topic, baseline_topic])
            inserted = insert_rows(conn, _INSERT_KAFKA, KAFKA, topic, kafka_rows)
            size = kafka_value_size(conn, topic)
            say(f"Kafka: {kafka_rows:,} outbox rows inserted in {inserted:.1f} s (values {size} B); relaying")
            seconds = time_relay(settings, conn, topic, kafka_rows, None, batch_size, timeout)
            held = {"records_in_topic": topic_records(settings, topic)}
            relay_kafka = relayed(kafka_rows, seconds, {"value_size": size}, topic, held)
            say(f"Kafka baseline: ProducerPerformance, {kafka_rows:,} records of {size} B")
            perf = kafka_baseline(settings, baseline_topic, kafka_rows, size)
            say(f"ProducerPerformance: {perf['final_line']}")
            results["kafka"] = {
                "relay": relay_kafka,
                "baseline": perf,
                "ratio": round(relay_kafka["rows_per_second"] / perf["rows_per_second"], 3),
            }

            # 2. RabbitMQ.
            say(f"RabbitMQ: vhost {VHOST}, quorum queues {queue} and {baseline_queue}")
            create_vhost(VHOST)
            vhost_made = True
            declare_queues(rabbit_url, queue, baseline_queue)
            inserted = insert_rows(conn, _INSERT_RABBITMQ, RABBITMQ, queue, rabbitmq_rows)
            size = rabbitmq_body_size(conn, queue)
            say(
                f"RabbitMQ: {rabbitmq_rows:,} outbox rows inserted in {inserted:.1f} s"
                f" (messages {size} B); relaying"
            )
            seconds = time_relay(settings, conn, queue, rabbitmq_rows, rabbit_url, batch_size, timeout)
            held = {"messages_in_queue": queue_depth(rabbit_url, queue)}
            relay_rabbit = relayed(rabbitmq_rows, seconds, {"body_size": size}, queue, held)
            say(f"RabbitMQ baseline: pika with confirms, {rabbitmq_rows:,} messages of {size} B")
            confirms = rabbitmq_baseline(rabbit_url, baseline_queue, rabbitmq_rows, size)
            confirms["messages_in_queue"] = queue_depth(rabbit_url, baseline_queue)
            say(f"pika with confirms: {confirms['rows_per_second']:,.0f} messages/s")
            results["rabbitmq"] = {
                "relay": relay_rabbit,
                "baseline": confirms,
                "ratio": round(relay_rabbit["rows_per_second"] / confirms["rows_per_second"], 3),
            }
    finally:
        say("cleaning up: scratch outbox rows, topics and vhost")
        with psycopg.connect(db_url, autocommit=True) as conn:
            deleted = conn.execute("DELETE FROM outbox WHERE topic = ANY(%s)", ([topic, queue],)).rowcount
        say(f"deleted {deleted:,} outbox rows")
        delete_topics(admin, [topic, baseline_topic])
        if vhost_made:
            delete_vhost(VHOST)
    results["run_seconds"] = round(time.monotonic() - started, 1)
    return results


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"| relay scenario (batch {results['batch_size']}) | rows | relay rows/s | baseline | baseline/s"
        " | relay ÷ baseline | none lost |",
        "|---|---:|---:|---|---:|---:|:---:|",
    ]
    for name, label in (("kafka", "Kafka"), ("rabbitmq", "RabbitMQ")):
        part = results.get(name)
        if not part:
            continue
        relay, baseline = part["relay"], part["baseline"]
        size = relay.get("value_size", relay.get("body_size"))
        lines.append(
            f"| outbox → {label} ({size} B) | {relay['rows']:,} | {relay['rows_per_second']:,.0f}"
            f" | {baseline['tool']} | {baseline['rows_per_second']:,.0f} | {part['ratio'] * 100:.0f}%"
            f" | {'yes' if relay['none_lost'] else 'NO'} |"
        )
    m = results.get("machine", {})
    lines += [
        "",
        f"Machine: {m.get('cores')} cores, {m.get('memory_gib')} GiB, Python {m.get('python')},"
        f" PostgreSQL {m.get('postgresql')}. Whole run: {results.get('run_seconds')} s.",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.relay", description=__doc__)
    parser.add_argument("--kafka-rows", type=int, default=50_000)
    parser.add_argument("--rabbitmq-rows", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=500, help="the relay's batch (its default: 500)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds allowed per relay run")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    results = run(args.kafka_rows, args.rabbitmq_rows, args.batch_size, args.timeout)
    report.publish("relay", results, markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
