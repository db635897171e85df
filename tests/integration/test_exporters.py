"""The exporters of the stack's dependencies, scraped for real: the rabbitmq_prometheus plugin, one
postgres_exporter per PostgreSQL server, redis_exporter and the JMX exporter agent in the Kafka broker.
Each must answer (a test fails, never skips, when one is not running: `make up` starts them), report
its server up, and serve every series the Grafana dashboards (ops/grafana/dashboards) take from it,
with the labels the expressions use; a counter must be read through rate()/increase() and nothing
else may be. The shop's own series are checked against its code in tests/unit/ops/test_dashboards.py.

Some series only exist once there was traffic (Kafka's per-topic meters; RabbitMQ's per-queue series
need a queue): the test makes a scratch topic and a scratch queue, writes and reads one message on
each, and scrapes while they exist."""

from __future__ import annotations

import os
import re
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pika
import pytest
from confluent_kafka import Producer

from shop.settings import Settings
from tests.integration.kafka_helpers import consume, scratch_topic
from tests.unit.ops.test_dashboards import (
    TARGET_LABELS,
    DashboardExpr,
    dashboard_exprs,
    source_of,
)

# Exporter job (as in ops/prometheus/prometheus.yml) -> its endpoints: the URL variable that
# `ops/local/stack.sh up` writes to var/stack.env, else the port variable and default of ops/local/lib.sh.
ENDPOINTS = {
    "rabbitmq": [("SHOP_RABBITMQ_METRICS_URL", "SHOP_RABBITMQ_PROMETHEUS_PORT", 15692)],
    "postgres": [
        ("SHOP_PG_PRIMARY_EXPORTER_URL", "SHOP_PG_PRIMARY_EXPORTER_PORT", 9187),
        ("SHOP_PG_REPLICA_EXPORTER_URL", "SHOP_PG_REPLICA_EXPORTER_PORT", 9188),
    ],
    "redis": [("SHOP_REDIS_EXPORTER_URL", "SHOP_REDIS_EXPORTER_PORT", 9121)],
    "kafka": [("SHOP_KAFKA_METRICS_URL", "SHOP_KAFKA_METRICS_PORT", 9404)],
}
SAMPLE = re.compile(r"^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)")
LABEL = re.compile(r'([a-zA-Z_]\w*)="(?:[^"\\]|\\.)*"')


def family_names(name: str) -> list[str]:
    """The family names a sample name may belong to (a histogram's or summary's series)."""
    return [name.removesuffix(suffix) for suffix in ("_bucket", "_sum", "_count") if name.endswith(suffix)]


# How long series that appear with traffic may take (RabbitMQ emits queue statistics every 5 s).
SETTLE_SECONDS = 30


@dataclass
class Scrape:
    """The series of one or more scrapes: sample name -> label names, and -> its family's type."""

    labels: dict[str, set[str]] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, text: str) -> None:
        """Reads the text exposition format as it is. (prometheus_client's parser renames counters
        to end in _total, which postgres_exporter's do not: PromQL sees the names as served.)"""
        declared: dict[str, str] = {}
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split(maxsplit=3)
                declared[name] = kind.strip()
            elif line.strip() and not line.startswith("#"):
                match = SAMPLE.match(line)
                assert match, f"not a sample line: {line!r}"
                name = match[1]
                family = next((f for f in (name, *family_names(name)) if f in declared), name)
                self.labels.setdefault(name, set()).update(LABEL.findall(match[2] or ""))
                self.types[name] = declared.get(family, "untyped")
                self.values.setdefault(name, []).append(float(match[3]))


def endpoint_urls(settings: Settings, job: str) -> list[str]:
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return [
        os.environ.get(url_var) or f"http://{host}:{os.environ.get(port_var, default)}/metrics"
        for url_var, port_var, default in ENDPOINTS[job]
    ]


def fetch(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=20) as response:
            body: bytes = response.read()
    except (urllib.error.URLError, OSError) as exc:
        pytest.fail(f"{url} does not answer ({exc}): is the exporter running? (`make up` starts it)")
    return body.decode()


def scrape(settings: Settings, job: str) -> Scrape:
    result = Scrape()
    for url in endpoint_urls(settings, job):
        result.add(fetch(url))
    return result


def is_counter(name: str, kind: str) -> bool:
    return kind == "counter" or (
        kind in {"histogram", "summary"} and name.endswith(("_bucket", "_sum", "_count"))
    )


def problems_of(scrapes: dict[str, Scrape], exprs: list[DashboardExpr]) -> list[str]:
    problems = []
    for e in exprs:
        labels_in_expr: set[str] = set(TARGET_LABELS)
        all_from_exporters = True
        for selector in e.query.selectors:
            job = source_of(selector, e.job)
            if job not in scrapes:
                all_from_exporters = False
                continue
            found = scrapes[job]
            if selector.name not in found.labels:
                problems.append(f"{e.dashboard}: {e.where}: {job} serves no {selector.name}")
                continue
            labels_in_expr |= found.labels[selector.name]
            for label in set(selector.matchers) - found.labels[selector.name] - TARGET_LABELS:
                problems.append(f"{e.dashboard}: {e.where}: {selector.name} has no label {label!r}")
            if e.where.startswith("variable "):
                continue
            counter = is_counter(selector.name, found.types[selector.name])
            if counter and not selector.in_rate:
                problems.append(
                    f"{e.dashboard}: {e.where}: counter {selector.name} outside rate()/increase()"
                )
            if selector.in_rate and not counter:
                problems.append(
                    f"{e.dashboard}: {e.where}: rate() of {selector.name}, a {found.types[selector.name]}"
                )
        if all_from_exporters:
            for label in e.query.grouping - labels_in_expr:
                problems.append(
                    f"{e.dashboard}: {e.where}: no series of the expression has a label {label!r}"
                )
    return problems


@pytest.fixture(scope="module")
def traffic(settings: Settings) -> Iterator[None]:
    """A scratch Kafka topic and a scratch RabbitMQ queue, each with one message written and read."""
    with scratch_topic(settings.kafka_bootstrap, partitions=1, prefix="test.exporters") as topic:
        producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
        producer.produce(topic, b"exporters")
        assert producer.flush(10) == 0
        assert len(consume(settings.kafka_bootstrap, topic, 1)) == 1
        connection = pika.BlockingConnection(pika.URLParameters(settings.rabbitmq_url))
        channel = connection.channel()
        queue = f"test.exporters.{uuid.uuid4().hex[:8]}"
        channel.queue_declare(queue, durable=False)
        try:
            channel.basic_publish("", queue, b"exporters")
            channel.basic_publish("", queue, b"exporters")
            method, _properties, _body = channel.basic_get(queue, auto_ack=False)
            assert method is not None  # one unacked, one ready while the scrapes run
            yield
        finally:
            channel.queue_delete(queue)
            connection.close()


@pytest.mark.parametrize("job", sorted(ENDPOINTS))
def test_the_exporter_answers_and_sees_its_server_up(settings, job):
    found = scrape(settings, job)
    if job == "postgres":
        assert found.values["pg_up"] == [1.0, 1.0]  # the primary's exporter, then the replica's
        assert found.values["pg_replication_is_replica"] == [0.0, 1.0]
    elif job == "redis":
        assert found.values["redis_up"] == [1.0]
    elif job == "rabbitmq":
        assert "rabbitmq_identity_info" in found.labels
        assert found.values["rabbitmq_alarms_memory_used_watermark"] == [0.0]
    else:
        assert found.values["kafka_controller_active_controllers"] == [1.0]
        assert found.values["jvm_memory_used_bytes"]


def test_postgres_exporters_use_a_monitoring_role_that_sees_replication(settings):
    # pg_stat_replication's rows are only visible to superusers and pg_monitor members.
    primary = Scrape()
    primary.add(fetch(endpoint_urls(settings, "postgres")[0]))
    assert primary.values.get("pg_stat_replication_pg_wal_lsn_diff"), "the replica's walsender is not visible"


@pytest.mark.usefixtures("traffic")
def test_every_exporter_series_of_the_dashboards_is_served(settings):
    exprs = dashboard_exprs()
    used_jobs = {source_of(s, e.job) for e in exprs for s in e.query.selectors}
    assert set(ENDPOINTS) <= used_jobs  # every exporter has a dashboard reading it
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        scrapes = {job: scrape(settings, job) for job in ENDPOINTS}
        problems = problems_of(scrapes, exprs)
        if not problems or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert not problems, "\n".join(problems)
