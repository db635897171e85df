"""Starting `shop run PROCESS` for a benchmark, on a free port, and waiting until it is ready."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(process: subprocess.Popen[Any], grace: float) -> None:
    """SIGTERM, and SIGKILL if it is still there after `grace` seconds."""
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_ready(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"bench: {url} never became ready (is the stack up? `make up`)")


@dataclass(frozen=True)
class Running:
    name: str
    pid: int
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_mib(self) -> float:
        """Resident memory of the process, from /proc."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"no VmRSS for pid {self.pid}")


@contextmanager
def shop_process(
    process: str, env: Mapping[str, str], args: Sequence[str] = (), log: Path | None = None
) -> Iterator[Running]:
    """`shop run PROCESS ARGS` with `env` over this environment, its health port free; stopped on exit."""
    port = free_port()
    port_variable = f"SHOP_{process.upper()}_PORT"
    output = log.open("ab") if log else subprocess.DEVNULL
    child = subprocess.Popen(
        [sys.executable, "-m", "shop", "run", process, *args],
        env={**os.environ, **env, port_variable: str(port)},
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    try:
        running = Running(process, child.pid, port)
        wait_ready(running.base_url + "/readyz", timeout=60)
        yield running
    finally:
        stop(child, 30)
