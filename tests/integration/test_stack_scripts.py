"""The local stack's own scripts, as a developer uses them."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "ops/local/stack.sh"
WITH_ENV = ROOT / "ops/local/with-env"


def _components() -> list[str]:
    listed = subprocess.run(
        [str(STACK), "components"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert {"pg_primary", "redis", "rabbitmq", "kafka", "mailpit", "jaeger"} <= set(listed)
    return listed


def test_a_second_up_finds_everything_running_and_returns_within_seconds():
    started = time.monotonic()
    result = subprocess.run([str(STACK), "up"], capture_output=True, text=True, check=True)
    assert time.monotonic() - started < 10
    lines = [line for line in result.stdout.splitlines() if "already running" in line]
    assert len(lines) == len(_components()), result.stdout


def test_status_reports_every_component_up():
    result = subprocess.run([str(STACK), "status"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    assert result.stdout.count(" up") == len(_components())


def test_an_unknown_component_is_refused():
    result = subprocess.run([str(STACK), "stop", "mongodb"], capture_output=True, text=True)
    assert result.returncode != 0
    assert "unknown component" in result.stderr


def test_stack_env_lists_every_address():
    env_file = (ROOT / "var/stack.env").read_text()
    for key in (
        "SHOP_ORDERS_DB_URL",
        "SHOP_ORDERS_DB_REPLICA_URL",
        "SHOP_REDIS_URL",
        "SHOP_RABBITMQ_URL",
        "SHOP_KAFKA_BOOTSTRAP",
        "SHOP_SMTP_PORT",
        "SHOP_MAILPIT_URL",
    ):
        assert f"\n{key}=" in env_file


def test_with_env_fills_addresses_but_the_callers_own_value_wins():
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOP_")}
    env["SHOP_KAFKA_BOOTSTRAP"] = "broker.example:1"
    out = subprocess.run([str(WITH_ENV), "env"], env=env, capture_output=True, text=True, check=True).stdout
    assert "SHOP_KAFKA_BOOTSTRAP=broker.example:1" in out.splitlines()
    assert any(line.startswith("SHOP_REDIS_URL=redis://") for line in out.splitlines())
