"""Starting `shop run PROCESS` for a benchmark, on a free port, and waiting until it is ready."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness.processes import free_port, ready, stop


def wait_ready(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not ready(url):
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: {url} never became ready (is the stack up? `make up`)")
        time.sleep(0.2)


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


# --- other stacks ---------------------------------------------------------------------------------


def refuse_running_relays(database_urls: Mapping[str, str], who: str) -> None:
    """Stops `who` when a relay holds the outbox lease of one of these databases: another stack
    (`make run`) is up, and its relay would publish the benchmark's rows where they do not belong."""
    import psycopg

    from shop.db.outbox import RELAY_LEASE_ID

    for context, url in database_urls.items():
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (RELAY_LEASE_ID,)).fetchone()
            if not (row and row[0]):
                raise SystemExit(
                    f"{who}: a relay holds the `{context}` outbox lease (is `make run` or `shop run relay`"
                    " running?); stop it first"
                )
            conn.execute("SELECT pg_advisory_unlock(%s)", (RELAY_LEASE_ID,))


# --- CPU per process group ----------------------------------------------------------------------

# The servers of the local stack, by the command name their processes run under.
_SERVERS = {
    "postgres": "postgresql (primary + replica)",
    "beam.smp": "rabbitmq",
    "java": "kafka",
    "jaeger": "jaeger",  # busy only when spans are exported (the `orders-traced` scenario)
}


def _ticks(pid: int) -> int:
    """CPU ticks of the process and of its children that ended (utime + stime + cutime + cstime):
    a PostgreSQL backend that ends inside the window moves its ticks into the postmaster's."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return sum(int(f) for f in fields[11:15])


def _groups(shop_pids: Mapping[str, int]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {name: [pid] for name, pid in shop_pids.items()}
    groups["bench (load generator)"] = [os.getpid()]
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            comm = (proc / "comm").read_text().strip()
        except OSError:
            continue
        name = "redis" if comm.startswith("redis-server") else _SERVERS.get(comm)
        if name:
            groups.setdefault(name, []).append(int(proc.name))
    return groups


class CpuMeter:
    """CPU of each process group between start() and stop(), in % of one core: the shop processes
    that `shop_pids` names, this load generator, and the stack's servers (every process of each,
    looked up again at the end, so that one started inside the window counts too)."""

    def __init__(self, shop_pids: Callable[[], Mapping[str, int]]) -> None:
        self._shop_pids = shop_pids

    def start(self) -> None:
        self._before = {name: sum(map(_ticks, pids)) for name, pids in _groups(self._shop_pids()).items()}
        self._at = time.monotonic()

    def stop(self) -> dict[str, float]:
        wall = time.monotonic() - self._at
        hz = os.sysconf("SC_CLK_TCK")
        after = {name: sum(map(_ticks, pids)) for name, pids in _groups(self._shop_pids()).items()}
        # A group's own process restarted inside the window would show less than before: 0, not < 0.
        return {
            name: round(max(0, ticks - self._before.get(name, 0)) / hz / wall * 100, 1)
            for name, ticks in after.items()
        }
