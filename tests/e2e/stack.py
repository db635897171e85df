"""Runs `shop run all` as a real subprocess on free ports, the way `make run` does."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROCESS_PORTS = ("gateway", "workers", "streams", "relay")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> Response:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return Response(r.status, dict(r.headers), r.read())
    except urllib.error.HTTPError as e:
        return Response(e.code, dict(e.headers), e.read())


# Every stack's log of this test run: the suite ends by scanning them all for secrets (conftest).
LOGS: list[Path] = []


def _new_log() -> Path:
    path = Path(tempfile.mkstemp(prefix="shop-run-all-", suffix=".log")[1])
    LOGS.append(path)
    return path


@dataclass
class SupervisedStack:
    ports: dict[str, int] = field(default_factory=lambda: {name: free_port() for name in PROCESS_PORTS})
    process: subprocess.Popen[bytes] | None = None
    # Variables for this stack only, over the defaults below (e.g. short order timers).
    env: dict[str, str] = field(default_factory=dict)
    log_path: Path = field(default_factory=lambda: _new_log())

    def url(self, process: str, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[process]}{path}"

    def start(self, ready_timeout: float = 90) -> None:
        """Starts `shop run all` and waits until every process is ready. A port taken between
        choosing it and binding it (another process's ephemeral port) gets new ports and one more
        try; a stack that does not come up is stopped before the error goes up, so that no orphan
        keeps the outbox leases."""
        for attempt in (1, 2):
            try:
                self._start_once(ready_timeout)
                return
            except RuntimeError as exc:
                self.stop(signal.SIGTERM)
                if attempt == 2 or "address already in use" not in str(exc):
                    raise
                self.ports = {name: free_port() for name in PROCESS_PORTS}

    def _start_once(self, ready_timeout: float) -> None:
        env = {
            **os.environ,
            **{f"SHOP_{name.upper()}_PORT": str(port) for name, port in self.ports.items()},
            # Mail retries sized for a test run: 8 attempts still span more than 45 s.
            "SHOP_MAIL_MIN_BACKOFF": "2s",
            "SHOP_MAIL_MAX_BACKOFF": "20s",
            # The suite signs up hundreds of users from 127.0.0.1; test_rate_limits uses real limits.
            "SHOP_RATE_LIMITS": "auth=100000/60s,products=100000/60s,orders=100000/60s",
            # test_api_fuzz fails hundreds of logins from 127.0.0.1; the per-account limit still holds.
            "SHOP_LOGIN_FAILURES_PER_CLIENT": "1000000",
            # Spans leave each process every 200 ms instead of every 5 s: trace tests wait less.
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            **self.env,
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "shop", "run", "all"],
            env=env,
            stdout=self.log_path.open("wb"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + ready_timeout
        for name in PROCESS_PORTS:
            while True:
                try:
                    if request("GET", self.url(name, "/readyz")).status == 200:
                        break
                except OSError:
                    pass
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{name} never became ready:\n{self.output()[-4000:]}")
                time.sleep(0.2)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def children(self) -> dict[str, int]:
        """{process name: pid} of the supervisor's live children."""
        assert self.process is not None
        pid = self.process.pid
        found = {}
        child_pids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        for child in child_pids:
            try:
                argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            except FileNotFoundError:
                continue
            if b"run" in argv:
                found[argv[argv.index(b"run") + 1].decode()] = int(child)
        return found

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout)
