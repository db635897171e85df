"""The one notion of "now" the handlers are given: a function returning an aware UTC datetime.

Processes hand in the wall clock (`utc_now`); tests hand in a fixed or stepping one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)
