"""The stack under chaos: `shop run all` with three worker pools, its processes found by name."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from bench.processes import free_port, stop
from bench.rabbitmq import create_vhost, delete_vhost, management, vhost_url
from shop.actors.broker import delay_queue_name

VHOST = "shop-chaos"
# As the Swarm stack runs them (ops/swarm/stack.yml): commands, mail and timers apart.
POOLS = (("commands", "auth,orders,products"), ("mail", "mail"), ("timers", "timers"))
PROCESSES = ("gateway", *(f"workers-{name}" for name, _ in POOLS), "streams", "relay")
# Order timers in seconds, so that every order placed during the run reaches its end before the
# checks: reminders at 6 s and 12 s, cancelled or completed at 18 s, overdue timers swept after 4 s.
TIMERS = {
    "SHOP_ORDER_REMINDERS": "6s,12s",
    "SHOP_ORDER_TTL": "18s",
    "SHOP_TIMER_GRACE": "4s",
    "SHOP_TIMER_SWEEP_INTERVAL": "2s",
}
ORDER_TTL_SECONDS = 18.0
TIMER_GRACE_SECONDS = 4.0
# The delay queues this run's orders use: the first reminder's and the gap to the next (6 s), the
# expiry's (18 s). Shared with shop/actors/broker.py's naming.
OWN_DELAY_QUEUES = frozenset(delay_queue_name("timers", ms) for ms in (6_000, 18_000))


def _consecutive_free_ports(count: int) -> int:
    """The first of `count` consecutive free ports (the worker pools' health ports)."""
    for _ in range(100):
        first = free_port()
        if first + count > 65535:
            continue
        taken = False
        for port in range(first, first + count):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    taken = True
                    break
        if not taken:
            return first
    raise RuntimeError("no run of free ports")


class ChaosStack:
    def __init__(self, log: Path) -> None:
        workers = _consecutive_free_ports(len(POOLS))
        self.ports: dict[str, int] = {
            "gateway": free_port(),
            **{f"workers-{name}": workers + n for n, (name, _) in enumerate(POOLS)},
            "streams": free_port(),
            "relay": free_port(),
        }
        self._log = log
        self._child: subprocess.Popen[bytes] | None = None
        self.env: dict[str, str] = dict(os.environ)
        self.env.update(
            {
                "SHOP_GATEWAY_PORT": str(self.ports["gateway"]),
                "SHOP_WORKERS_PORT": str(workers),
                "SHOP_STREAMS_PORT": str(self.ports["streams"]),
                "SHOP_RELAY_PORT": str(self.ports["relay"]),
                "SHOP_RABBITMQ_URL": vhost_url(
                    os.environ.get("SHOP_RABBITMQ_URL", "amqp://shop:shop@127.0.0.1:5672/shop"), VHOST
                ),
                "SHOP_RATE_LIMITS": "auth=100000000/60s,products=100000000/60s,orders=100000000/60s",
                "SHOP_LOGIN_FAILURES_PER_CLIENT": "100000000",
                "SHOP_ACCESS_TOKEN_TTL": "2h",
                "SHOP_MAIL_MIN_BACKOFF": "1s",
                "SHOP_MAIL_MAX_BACKOFF": "8s",
                "OTEL_SDK_DISABLED": "true",
                **TIMERS,
            }
        )

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    def start(self, timeout: float = 120) -> None:
        create_vhost(VHOST, self.env)
        pools = [arg for name, queues in POOLS for arg in ("--worker-pool", f"{name}={queues}")]
        self._log.parent.mkdir(parents=True, exist_ok=True)
        self._child = subprocess.Popen(
            [sys.executable, "-m", "shop", "run", "all", *pools],
            env=self.env,
            stdout=self._log.open("ab"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        for name in PROCESSES:
            self.wait_ready(name, timeout)

    def stop(self) -> None:
        if self._child is not None:
            stop(self._child, 60)
        delete_vhost(VHOST, self.env)

    def pids(self) -> dict[str, int]:
        """{process name: pid} of the supervisor's live children."""
        assert self._child is not None
        pid = self._child.pid
        pool_of = {queues: f"workers-{name}" for name, queues in POOLS}
        found = {}
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            try:
                argv = [a.decode() for a in Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")]
            except FileNotFoundError:
                continue
            if "run" not in argv:
                continue
            process = argv[argv.index("run") + 1]
            if process == "workers" and "--queues" in argv:
                process = pool_of.get(argv[argv.index("--queues") + 1], process)
            found[process] = int(child)
        return found

    def ready(self, name: str) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.ports[name]}/readyz", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def wait_ready(self, name: str, timeout: float = 120) -> float:
        """Seconds until `name` answers its readiness check."""
        started = time.monotonic()
        while not self.ready(name):
            if self._child is not None and self._child.poll() is not None:
                raise SystemExit(f"chaos: the supervisor exited; see {self._log}")
            if time.monotonic() - started > timeout:
                raise SystemExit(f"chaos: {name} not ready after {timeout:.0f} s; see {self._log}")
            time.sleep(0.2)
        return time.monotonic() - started

    def queue_depths(self) -> dict[str, Any]:
        """Messages ready or unacked in each of the vhost's queues (RabbitMQ's management API)."""
        queues = management("GET", f"/api/queues/{urllib.parse.quote(VHOST, safe='')}", None, self.env) or []
        return {q["name"]: q.get("messages", 0) for q in queues}
