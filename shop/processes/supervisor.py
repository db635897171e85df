"""`shop run all`: every process of a single-machine stack under one supervisor.

Each child runs in its own session, so Ctrl-C reaches only the supervisor, which then stops the
children in an orderly way (SIGTERM, then SIGKILL after a grace period). A child that dies is
restarted with exponential backoff; one that stayed up a while starts again from the shortest delay.
Every line a child prints is prefixed with its name.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

log = logging.getLogger("shop.supervisor")

MIN_BACKOFF = 1.0
MAX_BACKOFF = 30.0
# A child that ran this long before dying is considered to have been healthy.
HEALTHY_AFTER = 60.0


@dataclass(frozen=True)
class Program:
    name: str
    argv: Sequence[str]


def next_backoff(current: float, ran_for: float) -> float:
    """The delay before the next restart, given the current one and how long the child ran."""
    if ran_for >= HEALTHY_AFTER:
        return MIN_BACKOFF
    return min(current * 2, MAX_BACKOFF)


def shop_program(process: str, *args: str, name: str | None = None) -> Program:
    """`shop run PROCESS ARGS`, its lines prefixed with `name` (default: the process)."""
    return Program(name or process, [sys.executable, "-m", "shop", "run", process, *args])


async def _pump(name: str, width: int, stream: asyncio.StreamReader) -> None:
    prefix = f"{name:<{width}} | ".encode()
    out = sys.stdout.buffer
    while line := await stream.readline():
        out.write(prefix + line if line.endswith(b"\n") else prefix + line + b"\n")
        out.flush()


class Supervisor:
    def __init__(self, programs: Sequence[Program], stop_timeout: float = 15.0) -> None:
        self._programs = list(programs)
        self._stop_timeout = stop_timeout
        self._stopping = asyncio.Event()
        self._width = max(len(p.name) for p in self._programs)
        self.restarts: dict[str, int] = {p.name: 0 for p in self._programs}

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop)
        log.info("supervising %s", ", ".join(p.name for p in self._programs))
        await asyncio.gather(*(self._keep_running(p) for p in self._programs))
        log.info("all processes stopped")
        return 0

    async def _keep_running(self, program: Program) -> None:
        backoff = MIN_BACKOFF
        while not self._stopping.is_set():
            started = time.monotonic()
            proc = await asyncio.create_subprocess_exec(
                *program.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
            assert proc.stdout is not None
            pump = asyncio.create_task(_pump(program.name, self._width, proc.stdout))
            exited = asyncio.create_task(proc.wait())
            stop_requested = asyncio.create_task(self._stopping.wait())
            await asyncio.wait({exited, stop_requested}, return_when=asyncio.FIRST_COMPLETED)
            if not exited.done():
                await self._terminate(program.name, proc)
            stop_requested.cancel()
            await exited
            await pump
            if self._stopping.is_set():
                return
            ran_for = time.monotonic() - started
            backoff = next_backoff(backoff, ran_for) if self.restarts[program.name] else MIN_BACKOFF
            self.restarts[program.name] += 1
            log.warning(
                "%s exited with code %s after %.1fs; restarting in %.0fs",
                program.name,
                proc.returncode,
                ran_for,
                backoff,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), backoff)

    async def _terminate(self, name: str, proc: asyncio.subprocess.Process) -> None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), self._stop_timeout)
        except TimeoutError:
            log.warning("%s did not stop within %.0fs; killing it", name, self._stop_timeout)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()


def run_all(programs: Sequence[Program]) -> int:
    return asyncio.run(Supervisor(programs).run())
