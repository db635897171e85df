"""The faults: each does its damage and returns once the stack has what it needs back (the crashed
process restarted by the supervisor and ready, the server started again)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.chaos.stack import PROCESSES
from harness.stack import ShopStack

STACK_SH = Path("ops/local/stack.sh")
REDIS_DATA = (Path("var/redis/appendonlydir"), Path("var/redis/dump.rdb"))


@dataclass(frozen=True)
class Fault:
    name: str
    what: str
    inject: Callable[[ShopStack], str]  # returns what happened, e.g. "restarted in 1.4 s"


def _stack_sh(*args: str) -> None:
    done = subprocess.run(["bash", str(STACK_SH), *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"stack.sh {' '.join(args)} failed: {done.stdout}{done.stderr}")


def kill_process(name: str) -> Fault:
    def inject(stack: ShopStack) -> str:
        pid = stack.pids()[name]
        os.kill(pid, signal.SIGKILL)
        started = time.monotonic()
        while stack.pids().get(name) in (None, pid):  # the supervisor waits 1 s, then restarts it
            if time.monotonic() - started > 60:
                raise RuntimeError(f"{name} was not restarted within 60 s")
            time.sleep(0.1)
        stack.wait_ready(name, timeout=120)
        return f"pid {pid} killed; restarted and ready in {time.monotonic() - started:.1f} s"

    return Fault(f"kill -9 {name}", f"SIGKILL to {name}; the supervisor restarts it", inject)


def crash_server(component: str, label: str) -> Fault:
    def inject(stack: ShopStack) -> str:
        started = time.monotonic()
        _stack_sh("kill", component)
        _stack_sh("start", component)
        return f"crashed and started again in {time.monotonic() - started:.1f} s"

    return Fault(f"restart {label}", f"{label} killed with SIGKILL, then started", inject)


def redis_without_its_data() -> Fault:
    def inject(stack: ShopStack) -> str:
        started = time.monotonic()
        _stack_sh("kill", "redis")
        for path in REDIS_DATA:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        _stack_sh("start", "redis")
        return f"killed, data deleted, started empty in {time.monotonic() - started:.1f} s"

    return Fault(
        "restart Redis, data gone", "Redis killed, its append-only file and dump deleted, started", inject
    )


def replica_away(seconds: float) -> Fault:
    def inject(stack: ShopStack) -> str:
        started = time.monotonic()
        _stack_sh("stop", "pg_replica")
        time.sleep(seconds)
        _stack_sh("start", "pg_replica")
        return f"stopped for {seconds:.0f} s; back in {time.monotonic() - started:.1f} s"

    return Fault(
        "PostgreSQL replica away", f"the streaming replica stopped for {seconds:.0f} s, then started", inject
    )


def every_fault(replica_seconds: float) -> list[Fault]:
    """One of each kind: every process kind killed, each server crashed, Redis emptied, the replica away."""
    return [
        *(kill_process(name) for name in PROCESSES),
        crash_server("rabbitmq", "RabbitMQ"),
        crash_server("kafka", "Kafka"),
        redis_without_its_data(),
        replica_away(replica_seconds),
    ]
