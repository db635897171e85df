"""The launcher's choices before anything starts: ports, names and the child's environment."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from harness import processes
from harness.stack import ShopStack


def test_one_workers_process_unless_pools_are_given(tmp_path: Path):
    stack = ShopStack(tmp_path / "log")
    assert stack.processes == ("gateway", "workers", "streams", "relay")
    assert len(set(stack.ports.values())) == 4
    assert stack.base == f"http://127.0.0.1:{stack.ports['gateway']}"
    assert stack.url("relay", "/readyz") == f"http://127.0.0.1:{stack.ports['relay']}/readyz"


def test_worker_pools_take_consecutive_ports_from_the_workers_port(tmp_path: Path):
    pools = (("commands", "auth,orders"), ("mail", "mail"), ("timers", "timers"))
    stack = ShopStack(tmp_path / "log", worker_pools=pools)
    assert stack.processes == (
        "gateway",
        "workers-commands",
        "workers-mail",
        "workers-timers",
        "streams",
        "relay",
    )
    first = stack.ports["workers-commands"]
    assert [stack.ports[f"workers-{name}"] for name, _ in pools] == [first, first + 1, first + 2]
    assert stack.child_env()["SHOP_WORKERS_PORT"] == str(first)


def test_the_child_runs_on_its_vhost_with_its_own_settings_over_the_environment(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("SHOP_RABBITMQ_URL", "amqp://u:p@a:5672/shop,amqp://u:p@b:5672/shop")
    monkeypatch.setenv("SHOP_ORDER_TTL", "24h")
    stack = ShopStack(tmp_path / "log", {"SHOP_ORDER_TTL": "12s"}, vhost="own vhost")
    env = stack.child_env()
    assert env["SHOP_RABBITMQ_URL"] == "amqp://u:p@a:5672/own%20vhost,amqp://u:p@b:5672/own%20vhost"
    assert env["SHOP_ORDER_TTL"] == "12s"
    assert env["SHOP_GATEWAY_PORT"] == str(stack.ports["gateway"])


def test_a_stack_never_started_stops_quietly(tmp_path: Path):
    assert ShopStack(tmp_path / "log").stop() is None


IGNORES_SIGTERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(1, flush=True); time.sleep(60)"
)


def test_stop_kills_what_ignores_its_signal_after_the_grace(tmp_path: Path):
    stubborn = subprocess.Popen(
        [sys.executable, "-c", IGNORES_SIGTERM],
        stdout=subprocess.PIPE,
    )
    assert stubborn.stdout is not None
    stubborn.stdout.readline()  # its handler is in place
    assert processes.stop(stubborn, grace=0.5) == -9
