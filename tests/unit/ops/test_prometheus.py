"""ops/prometheus: promtool accepts both scrape configurations and the rules, the rules' own unit
tests pass, every alert is exercised by them, and every shop_* metric the rules name is one the code
defines. promtool comes from Debian's `prometheus` package; it is installed the stack's way when
missing (root, apt), never skipped."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase

from shop.settings import Settings
from tests.unit.ops.tools import METRIC_MODULES, run_promtool

ROOT = Path(__file__).resolve().parents[3]
PROMETHEUS = ROOT / "ops" / "prometheus"
CONFIGS = [PROMETHEUS / "prometheus.yml", PROMETHEUS / "prometheus.swarm.yml"]
RULES = sorted((PROMETHEUS / "rules").glob("*.rules.yml"))
RULE_TESTS = sorted((PROMETHEUS / "rules").glob("*.rules.test.yml"))

JOBS = {"gateway", "workers", "streams", "relay", "rabbitmq", "postgres", "redis", "kafka", "prometheus"}

# A metric name, not part of a recorded name (level:metric:operations) or of a longer word.
METRIC_NAME = re.compile(r"(?<![\w:])shop_[a-z0-9_]+(?![\w:])")

# A selector's label matchers, and the labels of a `by (...)`/`on (...)` clause.
SELECTOR = re.compile(r"(?<![\w:])(shop_[a-z0-9_]+)\{([^}]*)\}")
MATCHER_LABEL = re.compile(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)")
# Labels every scraped series has (Prometheus adds them), and histogram buckets' own.
TARGET_LABELS = {"job", "instance"}

# The first run may install Debian's prometheus package (apt-get update included).
pytestmark = pytest.mark.timeout(900)


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def rules() -> list[dict[str, Any]]:
    return [rule for path in RULES for group in load(path)["groups"] for rule in group["rules"]]


def test_the_rule_files_exist():
    assert [p.name for p in RULES] == ["shop.rules.yml"]
    assert [p.name for p in RULE_TESTS] == ["shop.rules.test.yml"]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_promtool_accepts_the_configuration(promtool, config):
    output = run_promtool(promtool, "check", "config", str(config.relative_to(ROOT)))
    assert "1 rule files found" in output, output  # the rules glob matched; the tests file did not


def test_promtool_accepts_the_rules(promtool):
    run_promtool(promtool, "check", "rules", *(str(p.relative_to(ROOT)) for p in RULES))


def test_the_rules_pass_their_unit_tests(promtool):
    run_promtool(promtool, "test", "rules", *(str(p.relative_to(ROOT)) for p in RULE_TESTS))


def test_every_alert_has_a_severity_a_summary_and_a_description():
    alerts = [rule for rule in rules() if "alert" in rule]
    assert len(alerts) >= 10
    for rule in alerts:
        assert rule.get("labels", {}).get("severity") in {"critical", "warning"}, rule["alert"]
        assert {"summary", "description"} <= set(rule.get("annotations", {})), rule["alert"]


def test_every_alert_is_seen_firing_by_the_unit_tests():
    fired = {
        case["alertname"]
        for path in RULE_TESTS
        for test in load(path)["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    missing = {rule["alert"] for rule in rules() if "alert" in rule} - fired
    assert not missing, f"no promtool test makes these alerts fire: {sorted(missing)}"


def test_both_configurations_scrape_the_same_jobs():
    for config in CONFIGS:
        assert {job["job_name"] for job in load(config)["scrape_configs"]} == JOBS, config.name


def test_the_local_configuration_scrapes_the_default_ports_of_the_shop_processes():
    settings = Settings.from_env({})
    expected = {
        "gateway": settings.gateway_port,
        "workers": settings.workers_port,
        "streams": settings.streams_port,
        "relay": settings.relay_port,
    }
    jobs = {job["job_name"]: job for job in load(CONFIGS[0])["scrape_configs"]}
    for name, port in expected.items():
        targets = [t for static in jobs[name]["static_configs"] for t in static["targets"]]
        assert targets == [f"{settings.host}:{port}"], name
    swarm = {job["job_name"]: job for job in load(CONFIGS[1])["scrape_configs"]}
    for name, port in expected.items():
        (sd,) = swarm[name]["dns_sd_configs"]
        assert sd["names"] == [f"tasks.{name}"], name
        assert sd["port"] == port, name


def shop_families() -> dict[str, str]:
    """Name -> type of the shop's metric families, as the registry reports them: a counter's name
    without its _total suffix, a histogram's without _bucket/_sum/_count."""
    for module in METRIC_MODULES:
        importlib.import_module(module)
    return {family.name: family.type for family in REGISTRY.collect() if family.name.startswith("shop_")}


def series_names(families: dict[str, str]) -> set[str]:
    """The names the families' series have on /metrics, i.e. in PromQL."""
    suffixes = {
        "counter": ["_total"],
        "gauge": [""],
        "histogram": ["_bucket", "_sum", "_count"],
        "summary": ["", "_sum", "_count"],
    }
    return {name + suffix for name, kind in families.items() for suffix in suffixes.get(kind, [""])}


def test_every_metric_the_rules_use_is_defined_by_the_shop():
    families = shop_families()
    series = series_names(families)
    assert {"shop_http_requests_total", "shop_stream_consumer_lag"} <= series  # read as intended
    in_exprs = {name for rule in rules() for name in METRIC_NAME.findall(rule["expr"])}
    assert len(in_exprs) >= 10, in_exprs
    unknown = sorted(in_exprs - series)
    assert not unknown, f"the rule expressions use series the code does not define: {unknown}"
    # A description pointing at a metric must name a real one (a histogram by its family name).
    in_annotations = {
        name
        for rule in rules()
        for text in rule.get("annotations", {}).values()
        for name in METRIC_NAME.findall(text)
    }
    unknown = sorted(in_annotations - series - set(families))
    assert not unknown, f"the rule annotations name metrics the code does not define: {unknown}"


def shop_label_names() -> dict[str, set[str]]:
    """Series name -> the label names the code gives it (the metric objects of METRIC_MODULES)."""
    shop_families()  # imports the modules
    labels: dict[str, set[str]] = {}
    for module in METRIC_MODULES:
        for metric in vars(importlib.import_module(module)).values():
            if isinstance(metric, MetricWrapperBase):
                # Private attributes, but the only place prometheus_client keeps the label names.
                kind, names = str(metric._type), set(metric._labelnames)
                for series in series_names({metric._name: kind}):
                    labels[series] = names | ({"le"} if series.endswith("_bucket") else set())
    return labels


def test_every_label_the_rules_use_is_one_the_metrics_have():
    labels = shop_label_names()
    assert labels["shop_http_requests_total"] == {"method", "route", "status", "context"}
    problems = []
    for rule in rules():
        name = rule.get("alert") or rule["record"]
        expr = rule["expr"]
        for metric, matchers in SELECTOR.findall(expr):
            for label in MATCHER_LABEL.findall(matchers):
                if label not in labels.get(metric, set()) | TARGET_LABELS:
                    problems.append(f"{name}: {metric} has no label {label!r}")
        # A grouping label must come from one of the expression's own metrics.
        available = TARGET_LABELS.union(*(labels.get(m, set()) for m in METRIC_NAME.findall(expr)))
        for clause in GROUPING.findall(expr):
            for label in filter(None, (part.strip() for part in clause.split(","))):
                if label not in available:
                    problems.append(f"{name}: no metric of the expression has a label {label!r}")
    assert not problems, "\n".join(problems)
