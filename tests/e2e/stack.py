"""The end-to-end tests' stacks: `shop run all` started by the harness (harness.stack), with settings
sized for a test run, each logging into a file of its own that the suite scans at its end."""

from __future__ import annotations

import tempfile
from pathlib import Path

from harness.stack import LIMITS_LIFTED, ShopStack

ENV = {
    # Mail retries sized for a test run: 8 attempts still span more than 45 s.
    "SHOP_MAIL_MIN_BACKOFF": "2s",
    "SHOP_MAIL_MAX_BACKOFF": "20s",
    # The suite signs up hundreds of users and fails hundreds of logins (test_api_fuzz) from 127.0.0.1;
    # the per-account login limit still holds, and test_rate_limits uses real limits on a gateway of its own.
    **LIMITS_LIFTED,
    # Spans leave each process every 200 ms instead of every 5 s: trace tests wait less.
    "OTEL_BSP_SCHEDULE_DELAY": "200",
}

# Every stack's log of this test run: the suite ends by scanning them all for secrets (conftest).
LOGS: list[Path] = []


def e2e_stack(env: dict[str, str] | None = None, vhost: str | None = None) -> ShopStack:
    """A stack with the tests' settings and `env` over them (e.g. short order timers), not started."""
    log = Path(tempfile.mkstemp(prefix="shop-run-all-", suffix=".log")[1])
    LOGS.append(log)
    return ShopStack(log, {**ENV, **(env or {})}, vhost)
