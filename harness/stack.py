"""The one launcher of a private stack: `shop run all` as a subprocess, as `make run` starts it, on
free ports and, when asked, a RabbitMQ vhost of its own, against the local servers (`make up`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from harness import processes
from harness.rabbitmq import create_vhost, delete_vhost, vhost_url

RABBITMQ_URL = "amqp://shop:shop@127.0.0.1:5672/shop"
# Rate limits out of the way of a run that signs up and orders from 127.0.0.1 by the hundred.
LIMITS_LIFTED = {
    "SHOP_RATE_LIMITS": "auth=100000000/60s,products=100000000/60s,orders=100000000/60s",
    "SHOP_LOGIN_FAILURES_PER_CLIENT": "100000000",
}


class StackNotReady(RuntimeError):
    """A process of the stack did not become ready, or the supervisor exited."""


@dataclass
class ShopStack:
    """`shop run all` with `env` over this environment. With `vhost`, the stack's RabbitMQ URL points
    at that vhost, which start() creates and stop() deletes. With `worker_pools` ((name, queues), as
    `--worker-pool name=queues`), one workers process per pool, named `workers-NAME`."""

    log: Path
    env: dict[str, str] = field(default_factory=dict)
    vhost: str | None = None
    worker_pools: tuple[tuple[str, str], ...] = ()
    ports: dict[str, int] = field(init=False)
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.ports = self._free_ports()
        self._starts = 0
        self._vhost_made = False

    @property
    def workers(self) -> tuple[str, ...]:
        return tuple(f"workers-{name}" for name, _ in self.worker_pools) or ("workers",)

    @property
    def processes(self) -> tuple[str, ...]:
        return ("gateway", *self.workers, "streams", "relay")

    def _free_ports(self) -> dict[str, int]:
        # The n-th pool's health port is SHOP_WORKERS_PORT + n (shop/cli.py `run all`).
        first = processes.consecutive_free_ports(len(self.workers))
        return {
            "gateway": processes.free_port(),
            **{name: first + n for n, name in enumerate(self.workers)},
            "streams": processes.free_port(),
            "relay": processes.free_port(),
        }

    def url(self, process: str, path: str = "") -> str:
        return f"http://127.0.0.1:{self.ports[process]}{path}"

    @property
    def base(self) -> str:
        """The gateway's address."""
        return self.url("gateway")

    def child_env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "SHOP_GATEWAY_PORT": str(self.ports["gateway"]),
            "SHOP_WORKERS_PORT": str(self.ports[self.workers[0]]),
            "SHOP_STREAMS_PORT": str(self.ports["streams"]),
            "SHOP_RELAY_PORT": str(self.ports["relay"]),
        }
        if self.vhost:
            rabbitmq_url = os.environ.get("SHOP_RABBITMQ_URL", RABBITMQ_URL)
            env["SHOP_RABBITMQ_URL"] = vhost_url(rabbitmq_url, self.vhost)
        return {**env, **self.env}

    def start(self, ready_timeout: float = 120) -> None:
        """Starts `shop run all` and waits until every process is ready. A port taken between
        choosing it and binding it (another process's ephemeral port) gets new ports and one more
        try; a stack that does not come up is stopped before the error goes up, so that no orphan
        keeps the outbox leases."""
        if self.vhost:
            create_vhost(self.vhost)
            self._vhost_made = True
        for attempt in (1, 2):
            try:
                self._start_once(ready_timeout)
                return
            except StackNotReady as exc:
                if attempt == 2 or "address already in use" not in str(exc):
                    self.stop()
                    raise
                self._stop_process(signal.SIGTERM, 60)
                self.ports = self._free_ports()

    def _start_once(self, ready_timeout: float) -> None:
        pools = [arg for name, queues in self.worker_pools for arg in ("--worker-pool", f"{name}={queues}")]
        self.log.parent.mkdir(parents=True, exist_ok=True)
        # A stack's log starts empty, and keeps what a retry or a restart of the same stack adds.
        mode = "ab" if self._starts else "wb"
        self._starts += 1
        self.process = subprocess.Popen(
            [sys.executable, "-m", "shop", "run", "all", *pools],
            env=self.child_env(),
            stdout=self.log.open(mode),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + ready_timeout
        for name in self.processes:
            self.wait_ready(name, max(0.0, deadline - time.monotonic()))

    def ready(self, process: str) -> bool:
        return processes.ready(self.url(process, "/readyz"))

    def wait_ready(self, process: str, timeout: float = 120) -> float:
        """Seconds until `process` answers its readiness check."""
        started = time.monotonic()
        while not self.ready(process):
            exited = self.process is None or self.process.poll() is not None
            if exited or time.monotonic() - started > timeout:
                why = "the supervisor exited" if exited else f"not ready after {timeout:.0f} s"
                raise StackNotReady(
                    f"{process} never became ready ({why}; log {self.log}):\n{self.output()[-4000:]}"
                )
            time.sleep(0.2)
        return time.monotonic() - started

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def pids(self) -> dict[str, int]:
        """{process name: pid} of the supervisor's live children."""
        assert self.process is not None
        pool_of = {queues: f"workers-{name}" for name, queues in self.worker_pools}
        found = {}
        for pid, argv in processes.children(self.process.pid).items():
            if "run" not in argv:
                continue
            name = argv[argv.index("run") + 1]
            if name == "workers" and "--queues" in argv:
                name = pool_of.get(argv[argv.index("--queues") + 1], name)
            found[name] = pid
        return found

    def _stop_process(self, sig: int, grace: float) -> int | None:
        return None if self.process is None else processes.stop(self.process, grace, sig)

    def stop(self, sig: int = signal.SIGTERM, grace: float = 60) -> int | None:
        """`sig` to the supervisor (it stops its children in order), SIGKILL after `grace` seconds;
        then the vhost goes. The supervisor's exit code (None: it was never started). Stopping
        twice is harmless."""
        try:
            return self._stop_process(sig, grace)
        finally:
            if self.vhost and self._vhost_made:
                self._vhost_made = False
                delete_vhost(self.vhost)

    def __enter__(self) -> ShopStack:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
