"""The shape of the code base that a newcomer relies on, checked on the source itself.

- Every module under shop/ imports alone, in a fresh interpreter, with no server to talk to.
- No import cycle under shop/: not at module level, not through an import inside a function.
- Only the composition root (shop.bootstrap) and the process entry points (shop.cli, shop.processes)
  import shop.bootstrap: everything else is handed what it needs.
- SQL lives in shop/db/ and nowhere else under shop/.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHOP = ROOT / "shop"
ENTRY_POINTS = ("shop.bootstrap", "shop.cli", "shop.__main__", "shop.processes.")
# A string that starts like a statement PostgreSQL runs. (Prose in docstrings does not start so.)
SQL = re.compile(
    r"^\s*(SELECT\s.+\sFROM\s|SELECT\s+\w+\(|INSERT\s+INTO\s|UPDATE\s+\w+\s+SET\s|DELETE\s+FROM\s|WITH\s+\w+\s+AS\s*\(|"
    r"LISTEN\s|NOTIFY\s|UNLISTEN\s|CREATE\s+(TABLE|INDEX|FUNCTION|TRIGGER)\s|ALTER\s+TABLE\s|LOCK\s+TABLE\s)",
    re.DOTALL,  # keywords in capitals, as every statement here is written
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def shop_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(SHOP.rglob("*.py"))}


PACKAGES = {module_name(path) for path in SHOP.rglob("__init__.py")}


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_modules(source: str, module: str, known: set[str]) -> Iterator[str]:
    """The shop modules `module` (of this `source`) imports anywhere at run time, in a function too
    (annotations under TYPE_CHECKING aside)."""
    package = module if module in PACKAGES else module.rpartition(".")[0]

    def visit(node: ast.AST) -> Iterator[str]:
        if isinstance(node, ast.If) and _type_checking_only(node):
            yield from (name for child in node.orelse for name in visit(child))
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join([*parts[: len(parts) - node.level + 1], base]).strip(".")
            for alias in node.names:
                # `from shop.actors import auth` imports the module shop.actors.auth.
                yield f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
        for child in ast.iter_child_nodes(node):
            yield from visit(child)

    for name in visit(ast.parse(source)):
        # `import shop.a.b` also runs shop.a's __init__, which never imports back here.
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name.startswith("shop"):
            yield name


def import_graph() -> dict[str, set[str]]:
    modules = shop_modules()
    known = set(modules)
    return {
        name: set(imported_modules(path.read_text(), name, known)) - {name} for name, path in modules.items()
    }


# Forks a child per module from a parent that imported no shop module, only the libraries (to share
# their import time, about 1 s a process): each child imports its module into a fresh sys.modules
# as far as the shop is concerned, and says what failed.
IMPORT_EACH_ALONE = """
import os, sys, traceback
import aiohttp, confluent_kafka, dramatiq, jinja2, pika, psycopg, psycopg_pool, redis  # noqa: F401
import opentelemetry.sdk.trace, prometheus_client  # noqa: F401
assert not any(name == "shop" or name.startswith("shop.") for name in sys.modules)
for module in sys.argv[1:]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            __import__(module)
            code = 0
        except BaseException as exc:
            os.write(write, f"{module}: {type(exc).__name__}: {exc}".encode())
            code = 1
        os._exit(code)
    os.close(write)
    with os.fdopen(read) as out:
        said = out.read()
    _, status = os.waitpid(pid, 0)
    if status:
        print(said or f"{module}: exit status {status}")
"""


# Nothing answers on port 1: a module that connected anywhere on import would fail or hang.
NO_SERVERS = {
    "SHOP_RABBITMQ_URL": "amqp://x:y@127.0.0.1:1/none",
    "SHOP_REDIS_URL": "redis://127.0.0.1:1/0",
    "SHOP_SMTP_PORT": "1",
    "SHOP_KAFKA_BOOTSTRAP": "127.0.0.1:1",
}


def modules_failing_alone(modules: list[str]) -> list[str]:
    """What IMPORT_EACH_ALONE says of `modules`, one line per module that failed."""
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_EACH_ALONE, *modules],
        cwd=ROOT,
        env={**os.environ, **NO_SERVERS},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_every_module_imports_alone_in_a_fresh_interpreter():
    # (shop.__main__ runs the CLI when imported.)
    assert modules_failing_alone([name for name in shop_modules() if name != "shop.__main__"]) == []


def test_the_import_check_reports_a_module_that_fails_alone():
    assert modules_failing_alone(["shop.names", "shop.no_such_module"]) == [
        "shop.no_such_module: ModuleNotFoundError: No module named 'shop.no_such_module'"
    ]


def test_there_is_no_import_cycle_under_shop():
    graph = import_graph()
    cycles: list[list[str]] = []
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(module: str) -> None:
        state[module] = "open"
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert cycles == []


def test_the_cycle_check_sees_an_import_inside_a_function():
    # The check would be blind to the old way of dodging a cycle if it read module level only.
    source = "def later():\n    from shop import bootstrap\n    import shop.actors.registry\n"
    found = set(imported_modules(source, "shop.actors.probe", set(shop_modules())))
    assert found == {"shop.bootstrap", "shop.actors.registry"}


def test_only_the_composition_root_and_the_entry_points_import_bootstrap():
    importers = sorted(
        name
        for name, targets in import_graph().items()
        if "shop.bootstrap" in targets and not name.startswith(ENTRY_POINTS)
    )
    assert importers == []


def test_sql_lives_in_shop_db():
    found = []
    for name, path in shop_modules().items():
        if name.startswith("shop.db"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.match(node.value):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value.strip()[:60]!r}")
    assert found == []


def test_the_sql_check_recognises_statements_and_not_prose():
    assert SQL.match("SELECT status FROM orders WHERE id = %s")
    assert SQL.match("\n    UPDATE orders SET status = 'PAID'")
    assert SQL.match("INSERT INTO outbox (topic) VALUES (%s)")
    assert SQL.match("SELECT pg_is_in_recovery()")
    assert SQL.match("LISTEN order_stock")
    assert not SQL.match("Select the lanes that are idle.")
    assert not SQL.match("Updates the order when paid.")
