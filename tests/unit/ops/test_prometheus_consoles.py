"""ops/prometheus/consoles: the shop's views as Prometheus console pages (Go templates Prometheus
renders with ops/prometheus/console_libraries/shop.lib). Read here without a server: one page per view,
each template a page calls defined once, the blocks balanced, every page linked from the menu and the
index, only files Debian's prometheus package serves loaded. Every PromQL expression of a page (the
tables' queries and each graph's lines) is parsed by promtool, names only series the shop's code or a
dashboard-checked exporter exposes, with their labels, reads counters through rate()/increase(), and
names its legend's labels from its own grouping. tests/integration/test_prometheus_consoles.py renders
every page with the stack's Prometheus and runs every expression there."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]

from tests.unit.ops.test_dashboards import (
    TARGET_LABELS,
    Query,
    dashboard_exprs,
    is_counter_series,
    parse,
    shop_selector_problems,
    shop_series,
    source_of,
)
from tests.unit.ops.tools import run_promtool

ROOT = Path(__file__).resolve().parents[3]
CONSOLES = ROOT / "ops" / "prometheus" / "consoles"
LIBRARIES = ROOT / "ops" / "prometheus" / "console_libraries"
PAGES = sorted(CONSOLES.glob("*.html"))
LIBRARY_FILES = sorted(LIBRARIES.glob("*.lib"))
# Where Debian's prometheus package keeps what Prometheus serves under /classic/static.
DEBIAN_STATIC = Path("/usr/share/prometheus/web/static")

# Page -> its <h1>, the views issue 22 asks for.
VIEWS = {
    "index.html": "Shop metrics",
    "gateway.html": "Gateway",
    "actors.html": "Actors",
    "streams.html": "Stream agents",
    "outbox.html": "Outbox relay",
    "timers.html": "Order timers",
}
# Series Prometheus makes itself: a target's `up`, the alerts' state.
PROMETHEUS_SERIES = {"up", "ALERTS"}
# What a printf'd query's %s stands for when it is read here (a label value from the row).
PRINTF_VALUE = "x"

ACTION = re.compile(r"\{\{-?(.*?)-?\}\}", re.DOTALL)
STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')
OPENERS = {"if", "range", "with", "define", "block"}
H1 = re.compile(r"<h1>([^<]*)</h1>")
LEGEND_LABEL = re.compile(r"\[\[\s*(\w+)\s*\]\]")
# A graph as the pages declare it (shop.lib turns it into a PromConsole.Graph): one line per <code>.
GRAPH = re.compile(r'(<div class="shop_graph"[^>]*>)(.*?)</div>', re.DOTALL)
GRAPH_LINE = re.compile(r'<code data-name="([^"]*)">(.*?)</code>', re.DOTALL)
GRAPH_ATTRIBUTE = re.compile(r'([\w-]+)="([^"]*)"')
# The attributes shop.lib reads from a graph's <div>: any other is a typo it would ignore.
GRAPH_ATTRIBUTES = {"class", "id", "data-title", "data-units", "data-format", "data-min"}
ROW_LABEL = re.compile(r"\.Labels\.(\w+)")
STATIC = re.compile(r"""(?:src|href)="\{\{ pathPrefix \}\}/classic/static/([^"]+)\"""")


def actions(text: str) -> list[str]:
    """The template actions of a file, comments left out, each stripped of its braces."""
    return [a.strip() for a in ACTION.findall(text) if not a.strip().startswith("/*")]


def keyword(action: str) -> str:
    return action.split(maxsplit=1)[0] if action else ""


def defined(text: str) -> list[str]:
    return [m for a in actions(text) if keyword(a) == "define" for m in STRING.findall(a)[:1]]


def called(text: str) -> list[str]:
    return [m for a in actions(text) if keyword(a) == "template" for m in STRING.findall(a)[:1]]


@dataclass
class ConsoleExpr:
    page: str
    kind: str  # "value" (a figure of a table), "rows" (a table's rows) or "graph"
    expr: str  # as Prometheus receives it (a printf'd %s replaced with PRINTF_VALUE)
    query: Query
    legend: str = ""  # a graph's name for its lines, with [[label]]s
    row_labels: frozenset[str] = frozenset()  # the .Labels.X a "rows" table shows


def page_exprs(path: Path) -> list[ConsoleExpr]:
    """Every PromQL expression of a page: the first string of an action that runs `query` or a
    prom_query_drilldown, and every line of a graph (a <code> of a shop_graph)."""
    text = path.read_text()
    out: list[ConsoleExpr] = []
    blocks = re.split(r"(\{\{.*?\}\})", text, flags=re.DOTALL)
    for i, block in enumerate(blocks):
        if not block.startswith("{{") or block.startswith("{{/*"):
            continue
        action = block[2:-2].strip()
        strings = [s for s in STRING.findall(action) if s != "prom_query_drilldown"]
        if "prom_query_drilldown" in action:
            out.append(ConsoleExpr(path.name, "value", strings[0], parse(strings[0])))
        elif re.search(r"\bquery\b", action):
            expr = strings[0].replace("%s", PRINTF_VALUE)
            rows = keyword(action) == "range"
            body = ""
            if rows:  # the row's .Labels up to the range's {{ else }} or {{ end }}
                depth, j = 0, i + 1
                while j < len(blocks):
                    word = keyword(blocks[j][2:-2].strip()) if blocks[j].startswith("{{") else ""
                    if word in OPENERS:
                        depth += 1
                    elif word in {"end", "else"} and depth == 0:
                        break
                    elif word == "end":
                        depth -= 1
                    body += blocks[j]
                    j += 1
            labels = frozenset(ROW_LABEL.findall(body))
            out.append(
                ConsoleExpr(path.name, "rows" if rows else "value", expr, parse(expr), row_labels=labels)
            )
    for match in GRAPH.finditer(text):
        lines = GRAPH_LINE.findall(match[2])
        assert lines, f"{path.name}: a graph without a line: {match[0][:200]}"
        for name, expr in lines:
            expr = html.unescape(expr)
            out.append(ConsoleExpr(path.name, "graph", expr, parse(expr), legend=html.unescape(name)))
    return out


def console_exprs() -> list[ConsoleExpr]:
    return [e for path in PAGES for e in page_exprs(path)]


# ---- the templates ------------------------------------------------------------------------------


def test_there_is_a_page_per_view_with_its_heading():
    assert {p.name for p in PAGES} == set(VIEWS)
    assert [p.name for p in LIBRARY_FILES] == ["shop.lib"]
    for path in PAGES:
        assert H1.findall(path.read_text()) == [VIEWS[path.name]], path.name


def test_every_template_a_page_calls_is_defined_once():
    library = "".join(p.read_text() for p in LIBRARY_FILES)
    names = defined(library)
    assert len(names) == len(set(names)), f"defined twice: {sorted({n for n in names if names.count(n) > 1})}"
    assert {"head", "tail", "menu", "navbar", "prom_query_drilldown"} <= set(names)
    for path in [*PAGES, *LIBRARY_FILES]:
        text = path.read_text()
        available = set(names) | set(defined(text))
        missing = sorted(set(called(text)) - available)
        assert not missing, f"{path.name} calls templates nobody defines: {missing}"
        # A render template named by prom_query_drilldown's third argument must exist too.
        for action in actions(text):
            if "prom_query_drilldown" in action and "(args" in action:
                strings = [s for s in STRING.findall(action) if s != "prom_query_drilldown"]
                for render in strings[2:3]:
                    assert render in available, f"{path.name}: no template {render!r}"


@pytest.mark.parametrize("path", [*PAGES, *LIBRARY_FILES], ids=lambda p: p.name)
def test_the_blocks_are_balanced(path):
    text = path.read_text()
    assert text.count("{{") == text.count("}}"), path.name
    depth = 0
    for action in actions(text):
        word = keyword(action)
        if word in OPENERS:
            depth += 1
        elif word == "end":
            depth -= 1
            assert depth >= 0, f"{path.name}: an {{{{ end }}}} closes nothing"
    assert depth == 0, f"{path.name}: {depth} blocks left open"


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_a_page_opens_with_the_head_and_closes_with_the_tail(path):
    calls = [a for a in actions(path.read_text()) if keyword(a) == "template"]
    title = "Overview" if path.name == "index.html" else VIEWS[path.name]
    assert calls[0] == f'template "head" (args . "{title}")'
    assert calls[-1] == 'template "tail" .'  # which closes the content (prom_content_tail) too
    assert 'template "prom_content_head" .' in calls


def test_the_menu_and_the_index_link_every_view():
    library = "".join(p.read_text() for p in LIBRARY_FILES)
    menu = set(re.findall(r'template "_menuItem" \(args \. "([^"]+)"', library))
    assert menu == set(VIEWS)
    index = (CONSOLES / "index.html").read_text()
    assert set(re.findall(r'<a href="(\w+\.html)">', index)) == set(VIEWS) - {"index.html"}


def test_the_library_loads_only_files_debians_prometheus_serves(promtool):
    """No script from the internet, and every path under /classic/static a file the package
    installs (Debian strips some the upstream example library loads)."""
    del promtool  # only its installation of Debian's prometheus package
    for path in [*PAGES, *LIBRARY_FILES]:
        assert not re.search(r"""(?:src|href)=["']?(?:https?:)?//""", path.read_text()), path.name
    library = "".join(p.read_text() for p in LIBRARY_FILES)
    loaded = STATIC.findall(library)
    assert len(loaded) >= 9, loaded
    missing = [rel for rel in loaded if not (DEBIAN_STATIC / rel).is_file()]
    assert not missing, f"not in Debian's prometheus package: {missing}"


def test_every_graph_is_declared_as_the_library_reads_it(promtool):
    """A graph's settings are attributes shop.lib copies into PromConsole.Graph without a check, so
    a misspelt one draws silently without it: here each is known, data-format names one of
    PromConsole.NumberFormatter's functions, data-min is a number, and every line has a legend
    (a <code> without one would be graphed but escape the expression checks below)."""
    del promtool  # only its installation of Debian's prometheus package (prom_console.js)
    formatters = set(
        re.findall(
            r"^PromConsole\.NumberFormatter\.(\w+) = function",
            (DEBIAN_STATIC / "js" / "prom_console.js").read_text(),
            re.M,
        )
    )
    assert {"humanize", "humanizeNoSmallPrefix"} <= formatters, formatters
    problems = []
    for path in PAGES:
        ids = []
        for match in GRAPH.finditer(path.read_text()):
            attributes = dict(GRAPH_ATTRIBUTE.findall(match[1]))
            where = f"{path.name}: graph {attributes.get('id', match[1])}"
            ids.append(attributes.get("id"))
            problems += [f"{where}: unknown {a}" for a in sorted(set(attributes) - GRAPH_ATTRIBUTES)]
            if not attributes.get("id") or not attributes.get("data-title"):
                problems.append(f"{where}: needs an id and a data-title")
            if attributes.get("data-format", "humanize") not in formatters:
                problems.append(f"{where}: no PromConsole.NumberFormatter.{attributes['data-format']}")
            if not re.fullmatch(r"-?\d+(?:\.\d+)?", attributes.get("data-min", "0")):
                problems.append(f"{where}: data-min {attributes['data-min']!r} is not a number")
            if match[2].count("<code") != len(GRAPH_LINE.findall(match[2])):
                problems.append(f'{where}: a <code> without data-name="legend"')
        if len(ids) != len(set(ids)):
            problems.append(f"{path.name}: graph ids repeat: {ids}")
    assert not problems, "\n".join(problems)


# ---- the expressions ----------------------------------------------------------------------------


def test_the_reader_finds_the_expressions_of_tables_and_graphs():
    exprs = console_exprs()
    assert len(exprs) >= 60, len(exprs)
    kinds = {(e.page, e.kind) for e in exprs}
    for page in set(VIEWS) - {"index.html"}:
        assert {(page, "value"), (page, "graph"), (page, "rows")} <= kinds, page
    gateway = [e.expr for e in exprs if e.page == "gateway.html" and e.kind == "graph"]
    assert gateway[1] == (
        "histogram_quantile(0.5, sum by (le) (rate(shop_http_request_duration_seconds_bucket"
        "{context!='process'}[1m])))"
    )


@pytest.mark.timeout(900)
def test_promtool_parses_every_expression(promtool, tmp_path):
    exprs = console_exprs()
    rules = [{"record": f"console:check_{n}", "expr": e.expr} for n, e in enumerate(exprs)]
    path = tmp_path / "consoles.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "consoles", "rules": rules}]}))
    assert f"{len(rules)} rules found" in run_promtool(promtool, "check", "rules", str(path))


def test_every_series_is_the_shops_or_a_checked_exporters():
    """A shop series must be one the code exposes, with the labels used; an exporter's must be one
    a Grafana dashboard reads too, which tests/integration/test_exporters.py finds in real scrapes."""
    series = shop_series()
    exporter_checked = {s.name for e in dashboard_exprs() for s in e.query.selectors}
    problems = []
    for e in console_exprs():
        for selector in e.query.selectors:
            where = f"{e.page}: {e.expr}"
            if selector.name in PROMETHEUS_SERIES:
                continue
            source = source_of(selector, selector.job or "")
            if source == "shop":
                problems += shop_selector_problems(where, selector, series)
            elif source == "unknown" or selector.name not in exporter_checked:
                problems.append(f"{where}: {selector.name} is no series of the shop or a checked exporter")
        shop = [s for s in e.query.selectors if s.name in series]
        if shop and len(shop) == len(e.query.selectors):
            available = TARGET_LABELS.union(*(series[s.name].labels for s in shop))
            for label in e.query.grouping - available:
                problems.append(f"{e.page}: {e.expr}: no series of it has a label {label!r}")
    assert not problems, "\n".join(problems)


def test_counters_are_read_through_rate_and_nothing_else_is():
    series = shop_series()
    problems = []
    for e in console_exprs():
        for selector in e.query.selectors:
            if selector.name not in series:
                continue
            counter = is_counter_series(selector.name, series[selector.name].kind)
            if counter != selector.in_rate:
                problems.append(
                    f"{e.page}: {selector.name} {'outside' if counter else 'in'} rate(): {e.expr}"
                )
    assert not problems, "\n".join(problems)


def test_histogram_quantiles_sum_buckets_by_le():
    for e in console_exprs():
        if "histogram_quantile" in e.expr:
            assert any(s.name.endswith("_bucket") for s in e.query.selectors), e.expr
            assert "le" in e.query.grouping, f"{e.page}: {e.expr}"


def test_legends_and_table_rows_name_labels_the_expression_keeps():
    """A graph's [[label]] and a table row's .Labels.X must survive the expression's aggregation,
    or the page shows blanks: a label of its `by (...)`, or, with no aggregation, a target label."""
    series = shop_series()
    problems = []
    for e in console_exprs():
        if re.search(r"\b(?:sum|max|min|avg|count)\b", e.expr):
            keeps = e.query.grouping - {"le"}
        elif all(s.name in series for s in e.query.selectors):
            keeps = TARGET_LABELS.union(*(series[s.name].labels for s in e.query.selectors))
        else:  # Prometheus's own series (up, ALERTS): their labels are Prometheus's to give
            continue
        for label in set(LEGEND_LABEL.findall(e.legend)) | e.row_labels:
            if label not in keeps:
                problems.append(f"{e.page}: {label!r} is not kept by {e.expr}")
    assert not problems, "\n".join(problems)
