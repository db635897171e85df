"""Ports, readiness and stopping for the processes a test or a benchmark starts."""

from __future__ import annotations

import signal
import socket
import subprocess
import urllib.request
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def consecutive_free_ports(count: int) -> int:
    """The first of `count` consecutive free ports (`shop run all`'s worker pools take
    SHOP_WORKERS_PORT + n)."""
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


def ready(url: str) -> bool:
    """Whether `url` (a /readyz) answers 200 now."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def stop(process: subprocess.Popen[Any], grace: float, sig: int = signal.SIGTERM) -> int:
    """`sig`, and SIGKILL if it is still there after `grace` seconds: its exit code (negative when a
    signal ended it)."""
    if process.poll() is None:
        process.send_signal(sig)
    try:
        return process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def children(pid: int) -> dict[int, list[str]]:
    """{pid: argv} of the live children of process `pid`."""
    found = {}
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        try:
            argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        except FileNotFoundError:
            continue
        found[int(child)] = [a.decode() for a in argv]
    return found
