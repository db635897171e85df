"""Progress lines of a long run (a benchmark, the chaos run), shown as they happen."""

from __future__ import annotations

import time


def say(who: str, message: str) -> None:
    """`[who HH:MM:SS] message` on stdout, flushed: the run's output is often piped or captured."""
    print(f"[{who} {time.strftime('%H:%M:%S')}] {message}", flush=True)
