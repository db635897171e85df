"""ops/grafana: the provisioning files, the structure of every dashboard, and the PromQL of every panel
and template variable. promtool parses every expression; every shop_*/python_*/process_* series an
expression names must be one the shop's code exposes, with the labels the expression uses, and a
counter is only ever read through rate()/irate()/increase(). Series of the dependencies' exporters
(rabbitmq_*, pg_*, redis_*, kafka_*/jvm_*) are only attributed to their exporter here:
tests/integration/test_exporters.py checks them against real scrapes of the running stack.

The PromQL reading is a small tokenizer (no PromQL parser on PyPI fits the pinned environment): string
literals, label matchers and range selectors are tokens of their own, an identifier followed by `(` is
a function (which must be a PromQL function) or a grouping clause (whose label list is read as
labels), keywords are skipped, and any other identifier is a series name."""

from __future__ import annotations

import importlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase

from tests.unit.ops.tools import METRIC_MODULES, run_promtool

ROOT = Path(__file__).resolve().parents[3]
GRAFANA = ROOT / "ops" / "grafana"
DASHBOARD_DIR = GRAFANA / "dashboards"
DASHBOARDS = sorted(DASHBOARD_DIR.glob("*.json"))
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "shop.yml"

# One dashboard per concern (issue 9, point 5).
CONCERNS = {
    "gateway",
    "actors",
    "streams",
    "relay",
    "timers",
    "mail",
    "postgresql",
    "redis",
    "rabbitmq",
    "kafka",
}

# Prometheus jobs (ops/prometheus/prometheus.yml): the shop's processes, and the exporters with the
# series namespaces each serves. process_* (and go_*) are served by many: a selector of one must say
# which with a job="..." matcher.
SHOP_JOBS = {"gateway", "workers", "streams", "relay"}
EXPORTER_NAMESPACES = {
    "rabbitmq": ("rabbitmq_", "erlang_"),
    "postgres": ("pg_",),
    "redis": ("redis_",),
    "kafka": ("kafka_", "jvm_", "jmx_"),
}
SHOP_PREFIXES = ("shop_", "python_")
GENERIC_PREFIXES = ("process_", "go_")
# Made by Prometheus itself for every target, not scraped.
SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_series_added"}
# Labels Prometheus gives every scraped series.
TARGET_LABELS = {"job", "instance"}

DATASOURCE = {"type": "prometheus", "uid": "prometheus"}

# ---- PromQL ----------------------------------------------------------------------------------

AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
    "quantile", "limitk", "limit_ratio",
}  # fmt: skip
FUNCTIONS = AGGREGATIONS | {
    "abs", "absent", "absent_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min",
    "day_of_month", "day_of_week", "day_of_year", "days_in_month", "delta", "deriv", "exp", "floor",
    "histogram_avg", "histogram_count", "histogram_fraction", "histogram_quantile", "histogram_stddev",
    "histogram_stdvar", "histogram_sum", "holt_winters", "hour", "idelta", "increase", "irate",
    "label_join", "label_replace", "ln", "log2", "log10", "minute", "month", "predict_linear", "rate",
    "resets", "round", "scalar", "sgn", "sort", "sort_desc", "sort_by_label", "sort_by_label_desc",
    "sqrt", "time", "timestamp", "vector", "year", "avg_over_time", "min_over_time", "max_over_time",
    "sum_over_time", "count_over_time", "quantile_over_time", "stddev_over_time", "stdvar_over_time",
    "last_over_time", "present_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh", "cos",
    "cosh", "sin", "sinh", "tan", "tanh", "deg", "rad", "pi",
}  # fmt: skip
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan", "start", "end"}
RATE_FUNCTIONS = {"rate", "irate", "increase"}

TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<var>\$(?:\{[^}]*\}|\w+))
  | (?P<number>(?:0x[0-9a-fA-F]+|\d[\w.]*|\.\d\w*))
  | (?P<ident>[a-zA-Z_:][\w:]*)
  | (?P<punct>==|!=|>=|<=|=~|!~|[-+*/%^<>=(),@{}\[\]:])
    """,
    re.VERBOSE,
)
MATCHER = re.compile(
    r"""\s*([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)\s*,?"""
)
LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*([a-zA-Z_]\w*)\s*\)\s*$", re.DOTALL)


@dataclass
class Selector:
    name: str
    matchers: dict[str, str] = field(default_factory=dict)  # label -> value (quotes removed)
    in_rate: bool = False  # the direct argument of rate()/irate()/increase()

    @property
    def job(self) -> str | None:
        return self.matchers.get("job")


@dataclass
class Query:
    selectors: list[Selector]
    grouping: set[str]  # labels named in by/without/on/ignoring/group_left/group_right clauses


class PromQLError(ValueError):
    pass


def _tokens(expr: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(expr):
        match = TOKEN.match(expr, pos)
        if match is None:
            raise PromQLError(f"cannot read {expr[pos : pos + 20]!r} in {expr!r}")
        kind = match.lastgroup or ""
        if kind != "space":
            out.append((kind, match.group()))
        pos = match.end()
    return out


def _matchers(tokens: list[tuple[str, str]], start: int, expr: str) -> tuple[dict[str, str], int]:
    """Reads `{...}` from tokens[start] (the `{`); returns the matchers and the index after `}`."""
    text, i = "", start + 1
    while i < len(tokens) and tokens[i][1] != "}":
        text += tokens[i][1] + (" " if tokens[i][0] == "ident" else "")
        i += 1
    if i == len(tokens):
        raise PromQLError(f"unclosed {{ in {expr!r}")
    matchers: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        match = MATCHER.match(text, pos)
        if match is None:
            raise PromQLError(f"cannot read the label matchers {{{text}}} in {expr!r}")
        matchers[match[1]] = match[3][1:-1]
        pos = match.end()
    return matchers, i + 1


def parse(expr: str) -> Query:
    """The series an expression selects (with their label matchers) and the labels it groups by."""
    tokens = _tokens(expr)
    selectors: list[Selector] = []
    grouping: set[str] = set()
    stack: list[str] = []  # the function (or "" for a bare parenthesis) of every open parenthesis
    pending = ""  # an aggregation whose parenthesis comes after its grouping clause: sum by (x) (...)
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        following = tokens[i + 1][1] if i + 1 < len(tokens) else ""
        if kind == "ident" and text in AGGREGATIONS and following in {"by", "without"}:
            pending = text
            i += 1
        elif kind == "ident" and text in GROUPING:
            if following == "(":
                i += 2
                while i < len(tokens) and tokens[i][1] != ")":
                    if tokens[i][0] == "ident":
                        grouping.add(tokens[i][1])
                    i += 1
            i += 1
        elif kind == "ident" and following == "(":
            if text not in FUNCTIONS:
                raise PromQLError(f"{text}() is not a PromQL function, in {expr!r}")
            stack.append(text)
            i += 2
        elif kind == "ident" and text in KEYWORDS:
            i += 1
        elif kind == "ident":
            selector = Selector(text, in_rate=bool(stack) and stack[-1] in RATE_FUNCTIONS)
            i += 1
            if i < len(tokens) and tokens[i][1] == "{":
                selector.matchers, i = _matchers(tokens, i, expr)
            selectors.append(selector)
        elif text == "{":
            raise PromQLError(f"a selector without a metric name in {expr!r}: name every series")
        elif text == "[":
            while i < len(tokens) and tokens[i][1] != "]":
                i += 1
            i += 1
        elif text == "(":
            stack.append(pending)
            pending = ""
            i += 1
        elif text == ")":
            if not stack:
                raise PromQLError(f"unbalanced ) in {expr!r}")
            stack.pop()
            i += 1
        else:
            i += 1
    if stack:
        raise PromQLError(f"unclosed ( in {expr!r}")
    return Query(selectors, grouping)


# Grafana's variables, replaced with what Grafana would put there before the query reaches Prometheus.
GRAFANA_VARIABLES = {
    "__rate_interval": "1m",
    "__interval": "1m",
    "__range": "1h",
    "instance": ".*",
}


def substitute(expr: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match[1] or match[2]
        name = name.split(":")[0]
        if name not in GRAFANA_VARIABLES:
            raise PromQLError(f"unknown Grafana variable ${name} in {expr!r}")
        return GRAFANA_VARIABLES[name]

    return re.sub(r"\$\{([^}]+)\}|\$(\w+)", value, expr)


# ---- the dashboards ---------------------------------------------------------------------------


def load_dashboard(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, those inside collapsed rows included."""
    out: list[dict[str, Any]] = []
    for panel in dashboard.get("panels", []):
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def home_job(dashboard: dict[str, Any]) -> str:
    """The job the dashboard is about: the one its `instance` variable lists the targets of."""
    (variable,) = [v for v in dashboard["templating"]["list"] if v["name"] == "instance"]
    match = LABEL_VALUES.match(variable["definition"])
    assert match, variable["definition"]
    (selector,) = parse(match[1]).selectors
    assert selector.name == "up", variable["definition"]
    assert selector.job, variable["definition"]
    return selector.job


@dataclass
class DashboardExpr:
    dashboard: str  # file stem
    where: str  # panel title / refId, or the variable
    expr: str
    query: Query
    job: str  # the dashboard's home job


def dashboard_exprs() -> list[DashboardExpr]:
    """Every PromQL expression of every dashboard: panel targets and template variable queries."""
    out: list[DashboardExpr] = []
    for path in DASHBOARDS:
        dashboard = load_dashboard(path)
        job = home_job(dashboard)
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                expr = target["expr"]
                where = f"{panel['title']} / {target['refId']}"
                out.append(DashboardExpr(path.stem, where, expr, parse(expr), job))
        for variable in dashboard["templating"]["list"]:
            match = LABEL_VALUES.match(variable["definition"])
            assert match, f"{path.name}: variable {variable['name']}: only label_values(...) queries"
            query = parse(match[1])
            query.grouping.add(match[2])
            out.append(DashboardExpr(path.stem, f"variable {variable['name']}", match[1], query, job))
    return out


def source_of(selector: Selector, job: str) -> str:
    """Where the series comes from: "shop", "prometheus" (synthetic) or an exporter's job."""
    name = selector.name
    if name in SYNTHETIC:
        return "prometheus"
    if name.startswith(SHOP_PREFIXES):
        return "shop"
    if name.startswith(GENERIC_PREFIXES):
        named = selector.job or job
        return "shop" if named in SHOP_JOBS else named
    for exporter, prefixes in EXPORTER_NAMESPACES.items():
        if name.startswith(prefixes):
            return exporter
    return "unknown"


# ---- what the shop exposes ----------------------------------------------------------------------


@dataclass
class Family:
    kind: str  # counter, gauge, histogram, summary, info, ...
    labels: set[str]


def shop_selector_problems(where: str, selector: Selector, series: dict[str, Family]) -> list[str]:
    """What is wrong with a selector of a shop series: no such series, or a label it does not have."""
    family = series.get(selector.name)
    if family is None:
        return [f"{where}: the shop exposes no {selector.name}"]
    return [
        f"{where}: {selector.name} has no label {label!r}"
        for label in sorted(set(selector.matchers) - family.labels - TARGET_LABELS)
    ]


def shop_series() -> dict[str, Family]:
    """Series name (as in PromQL) -> its family's type and label names, for everything the shop's
    processes expose: the metric modules' own, and prometheus_client's process_*/python_*."""
    modules = [importlib.import_module(module) for module in METRIC_MODULES]
    suffixes = {
        "counter": ["_total"],
        "histogram": ["_bucket", "_sum", "_count"],
        "summary": ["", "_sum", "_count"],
    }
    families: dict[str, Family] = {}
    for collected in REGISTRY.collect():
        labels = {name for sample in collected.samples for name in sample.labels}
        families[collected.name] = Family(collected.type, labels - {"le", "quantile"})
    for module in modules:
        for metric in vars(module).values():
            if isinstance(metric, MetricWrapperBase):
                # Private attributes, but the only place prometheus_client keeps the label names.
                families[metric._name] = Family(str(metric._type), set(metric._labelnames))
    series: dict[str, Family] = {}
    for name, family in families.items():
        for suffix in suffixes.get(family.kind, [""]):
            extra = {"le"} if suffix == "_bucket" else set()
            series[name + suffix] = Family(family.kind, family.labels | extra)
    return series


def family_of(series: str) -> str:
    """A series' metric name: without a counter's _total or a histogram's _bucket/_sum/_count."""
    for suffix in ("_total", "_bucket", "_sum", "_count"):
        if series.endswith(suffix):
            return series.removesuffix(suffix)
    return series


def is_counter_series(name: str, kind: str) -> bool:
    return kind == "counter" or (
        kind in {"histogram", "summary"} and name.endswith(("_bucket", "_count", "_sum"))
    )


# ---- tests: provisioning -------------------------------------------------------------------------


def test_the_datasource_is_prometheus_with_the_uid_the_dashboards_use():
    config = yaml.safe_load(DATASOURCES.read_text())
    assert config["apiVersion"] == 1
    (source,) = config["datasources"]
    assert source["type"] == "prometheus"
    assert source["uid"] == "prometheus"
    assert source["access"] == "proxy"
    # One file for every deployment: the URL comes from the environment (Grafana expands ${VAR} in
    # provisioning files): http://127.0.0.1:9090 locally, http://prometheus:9090 in the swarm.
    assert source["url"] == "${PROMETHEUS_URL}"


def test_the_dashboard_provider_loads_the_dashboards_folder():
    config = yaml.safe_load(PROVIDERS.read_text())
    assert config["apiVersion"] == 1
    (provider,) = config["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "${SHOP_DASHBOARDS_DIR}"
    assert provider["disableDeletion"] is True


# ---- tests: structure ----------------------------------------------------------------------------


def test_there_is_one_dashboard_per_concern():
    assert {path.stem for path in DASHBOARDS} == CONCERNS


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_a_dashboard_is_well_formed(path):
    dashboard = load_dashboard(path)
    assert dashboard["uid"] == f"shop-{path.stem}"
    assert dashboard["title"].startswith("Shop / ")
    assert dashboard["schemaVersion"] >= 36
    assert "shop" in dashboard["tags"]
    assert "id" not in dashboard or dashboard["id"] is None  # provisioning assigns ids
    everything = panels(dashboard)
    ids = [panel["id"] for panel in everything]
    assert len(ids) == len(set(ids)), f"{path.name}: panel ids repeat"
    titles = [panel["title"] for panel in everything if panel["type"] != "row"]
    assert len(titles) == len(set(titles)), f"{path.name}: panel titles repeat"
    occupied: set[tuple[int, int]] = set()
    for panel in everything:
        assert panel["title"].strip(), f"{path.name}: panel {panel['id']} has no title"
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert 0 < grid["w"] <= 24 - grid["x"], panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & occupied, f"{path.name}: {panel['title']} overlaps another panel"
        occupied |= cells
        if panel["type"] == "row":
            assert not panel.get("targets"), panel["title"]
            continue
        assert panel["type"] in {"timeseries", "stat"}, panel["type"]
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel.get("description"), f"{path.name}: {panel['title']} has no description"
        assert panel["targets"], f"{path.name}: {panel['title']} has no target"
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
            assert target["expr"].strip(), f"{path.name}: {panel['title']} has an empty expr"
    for variable in dashboard["templating"]["list"]:
        assert variable["datasource"] == DATASOURCE, variable["name"]
        assert variable["query"]["query"] == variable["definition"], variable["name"]


def test_every_dashboard_lists_its_targets_by_job():
    jobs = {path.stem: home_job(load_dashboard(path)) for path in DASHBOARDS}
    assert jobs == {
        "gateway": "gateway",
        "actors": "workers",
        "timers": "workers",
        "mail": "workers",
        "streams": "streams",
        "relay": "relay",
        "postgresql": "postgres",
        "redis": "redis",
        "rabbitmq": "rabbitmq",
        "kafka": "kafka",
    }


# ---- tests: the PromQL reader itself ---------------------------------------------------------------


def test_the_reader_finds_series_matchers_and_grouping_labels():
    query = parse(
        "histogram_quantile(0.99, sum by (route, le) ("
        'rate(a_bucket{x="b(c) d{e}", y=~"$z"}[$__rate_interval])))'
        " / on (job) group_left(instance) b offset 5m > bool 0.5 and c unless sum(d) by (k)"
    )
    assert [(s.name, s.matchers, s.in_rate) for s in query.selectors] == [
        ("a_bucket", {"x": "b(c) d{e}", "y": "$z"}, True),
        ("b", {}, False),
        ("c", {}, False),
        ("d", {}, False),
    ]
    assert query.grouping == {"route", "le", "job", "instance", "k"}
    assert [s.name for s in parse("time() - max(x_seconds) * 1e3 + topk(5, y)").selectors] == [
        "x_seconds",
        "y",
    ]
    with pytest.raises(PromQLError, match="not a PromQL function"):
        parse("rated(x_total[1m])")
    with pytest.raises(PromQLError, match="without a metric name"):
        parse('{__name__=~"shop_.*"}')
    assert substitute('rate(x{instance=~"$instance"}[$__rate_interval])') == 'rate(x{instance=~".*"}[1m])'


# ---- tests: the expressions --------------------------------------------------------------------------


@pytest.mark.timeout(900)
def test_promtool_parses_every_expression(promtool, tmp_path):
    exprs = dashboard_exprs()
    rules = [{"record": f"dashboard:check_{n}", "expr": substitute(e.expr)} for n, e in enumerate(exprs)]
    path = tmp_path / "dashboards.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    assert f"{len(rules)} rules found" in run_promtool(promtool, "check", "rules", str(path))


def test_every_series_comes_from_the_shop_or_a_known_exporter():
    exprs = dashboard_exprs()
    assert len(exprs) >= 100
    problems = []
    for e in exprs:
        for selector in e.query.selectors:
            source = source_of(selector, e.job)
            if source == "unknown":
                problems.append(
                    f"{e.dashboard}: {e.where}: {selector.name} is from no known process or exporter"
                )
            if selector.name.startswith(GENERIC_PREFIXES) and selector.job != e.job:
                problems.append(
                    f'{e.dashboard}: {e.where}: {selector.name} needs job="{e.job}" (many serve it)'
                )
    assert not problems, "\n".join(problems)


def test_every_shop_series_is_exposed_by_the_code_with_the_labels_used():
    series = shop_series()
    assert {"shop_http_requests_total", "shop_http_request_duration_seconds_bucket"} <= set(series)
    assert series["shop_http_requests_total"].labels == {"method", "route", "status", "context"}
    used: set[str] = set()
    problems = []
    for e in dashboard_exprs():
        shop_selectors = [s for s in e.query.selectors if source_of(s, e.job) == "shop"]
        for selector in shop_selectors:
            used.add(selector.name)
            problems += shop_selector_problems(f"{e.dashboard}: {e.where}", selector, series)
        # A grouping label must come from one of the expression's series (exporter ones: the
        # integration test).
        if shop_selectors and len(shop_selectors) == len(e.query.selectors):
            available = TARGET_LABELS.union(
                *(series[s.name].labels for s in shop_selectors if s.name in series)
            )
            for label in e.query.grouping - available:
                problems.append(
                    f"{e.dashboard}: {e.where}: no series of the expression has a label {label!r}"
                )
    assert not problems, "\n".join(problems)
    # Every metric of the shop is on some dashboard.
    unused = {family_of(name) for name in series if name.startswith("shop_")} - {family_of(u) for u in used}
    assert not unused, f"shop metrics on no dashboard: {sorted(unused)}"


def test_counters_are_read_through_rate_and_nothing_else_is():
    series = shop_series()
    problems = []
    for e in dashboard_exprs():
        if e.where.startswith("variable "):
            continue
        for selector in e.query.selectors:
            if source_of(selector, e.job) != "shop" or selector.name not in series:
                continue
            counter = is_counter_series(selector.name, series[selector.name].kind)
            if counter and not selector.in_rate:
                problems.append(
                    f"{e.dashboard}: {e.where}: counter {selector.name} outside rate()/increase()"
                )
            if selector.in_rate and not counter:
                problems.append(f"{e.dashboard}: {e.where}: rate() of {selector.name}, which is no counter")
    assert not problems, "\n".join(problems)


def test_histogram_quantiles_read_buckets_grouped_by_le():
    for e in dashboard_exprs():
        if "histogram_quantile" not in e.expr:
            continue
        buckets = [s for s in e.query.selectors if s.name.endswith("_bucket")]
        assert buckets, f"{e.dashboard}: {e.where}: histogram_quantile without a _bucket series"
        assert "le" in e.query.grouping, f"{e.dashboard}: {e.where}: the buckets must be summed by le"


def test_shop_panels_select_the_dashboards_instances():
    """On the shop's dashboards, every shop series is filtered by the instance variable."""
    for e in dashboard_exprs():
        if e.job not in SHOP_JOBS or e.where.startswith("variable "):
            continue
        for selector in e.query.selectors:
            if source_of(selector, e.job) == "shop":
                assert selector.matchers.get("instance") == "$instance", f"{e.dashboard}: {e.where}"
