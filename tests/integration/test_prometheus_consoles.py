"""The console pages of ops/prometheus/consoles, rendered by the stack's own Prometheus (`make up` runs
it; started here the stack's way when it is not running): each page answers 200 with its heading and
the menu of every view, the files its library loads are served, and every PromQL expression of the
pages is one this Prometheus evaluates. Real server, real HTTP; the pages are read as a person's
browser would get them."""

from __future__ import annotations

import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.unit.ops.test_prometheus_consoles import (
    CONSOLES,
    LIBRARY_FILES,
    PAGES,
    STATIC,
    VIEWS,
    console_exprs,
)
from tests.unit.ops.tools import run_from_root

ROOT = Path(__file__).resolve().parents[2]


def get(url: str, timeout: float = 10) -> tuple[int, str, str]:
    """Status, content type and body of a GET; an HTTP error's too."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return (
                answer.status,
                answer.headers.get("Content-Type", ""),
                answer.read().decode(errors="replace"),
            )
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read().decode(errors="replace")


def ready(base: str) -> bool:
    try:
        return get(f"{base}/-/ready", timeout=2)[0] == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def prometheus() -> str:
    """The stack's Prometheus: the address `make up` wrote to var/stack.env, else the port's default.
    Started with `ops/local/stack.sh start prometheus` when it does not answer (it then stays up,
    part of the stack, until `make down`)."""
    host = os.environ.get("SHOP_HOST", "127.0.0.1")
    port = os.environ.get("SHOP_PROMETHEUS_PORT", "9090")
    base = os.environ.get("SHOP_PROMETHEUS_URL", f"http://{host}:{port}").rstrip("/")
    if not ready(base):
        env = {**os.environ, "SHOP_PROMETHEUS": "1"}
        done = run_from_root([str(ROOT / "ops" / "local" / "stack.sh"), "start", "prometheus"], 300, env)
        assert done.returncode == 0, f"could not start Prometheus:\n{done.stdout}\n{done.stderr}"
        deadline = time.monotonic() + 60
        while not ready(base):
            assert time.monotonic() < deadline, f"Prometheus at {base} is not ready"
            time.sleep(0.5)
    return base


def test_it_serves_the_repositorys_consoles(prometheus):
    status, _, body = get(f"{prometheus}/api/v1/status/flags")
    assert status == 200, body
    flags = json.loads(body)["data"]
    assert Path(flags["web.console.templates"]) == CONSOLES
    assert Path(flags["web.console.libraries"]) == LIBRARY_FILES[0].parent


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_a_page_renders_with_its_heading_and_the_menu(prometheus, path):
    status, content_type, body = get(f"{prometheus}/consoles/{path.name}")
    # A template that fails (a bad query, an undefined template) answers 500 with Go's message.
    assert status == 200, body[:2000]
    assert content_type.startswith("text/html"), content_type
    assert f"<h1>{VIEWS[path.name]}</h1>" in body
    assert "<title>Shop · " in body
    assert "error executing template" not in body
    for page in VIEWS:
        assert f'href="{page}"' in body, f"{path.name} does not link {page}"
    # Every figure of its tables was rendered into a link to /graph, evaluated or "-".
    assert body.count('class="prom_query_drilldown"') == path.read_text().count("prom_query_drilldown")
    assert body.rstrip().endswith("</html>")


def test_the_files_the_pages_load_are_served(prometheus):
    library = "".join(p.read_text() for p in LIBRARY_FILES)
    for rel in STATIC.findall(library):
        status, _, _ = get(f"{prometheus}/classic/static/{rel}")
        assert status == 200, rel


def test_every_expression_of_the_pages_evaluates(prometheus):
    """The graphs' queries run in the reader's browser, not when the page renders: run each here."""
    failures = []
    exprs = console_exprs()
    for expr in sorted({e.expr for e in exprs}):
        query = urllib.parse.urlencode({"query": expr})
        status, _, body = get(f"{prometheus}/api/v1/query?{query}")
        if status != 200 or json.loads(body).get("status") != "success":
            failures.append(f"{expr}: {status} {body[:300]}")
    assert not failures, "\n".join(failures)
    # Prometheus's own series are there whether or not `make run` is: the index lists its targets.
    status, _, body = get(f"{prometheus}/consoles/index.html")
    assert re.search(r"<td>prometheus</td><td>[^<]+</td><td>up</td>", body), body[-3000:]
