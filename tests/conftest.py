"""Shared fixtures. Integration and end-to-end tests read the stack's addresses from the
environment, filled from var/stack.env (written by `make up`) where the caller did not set them."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from shop.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
STACK_ENV = ROOT / "var" / "stack.env"


def _load_stack_env() -> None:
    if not STACK_ENV.exists():
        return
    for line in STACK_ENV.read_text().splitlines():
        match = re.match(r"^((?:SHOP|OTEL)_[A-Z0-9_]+)=(.*)$", line)
        if match:
            os.environ.setdefault(match[1], match[2])


_load_stack_env()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The chaos run (tests/e2e/test_chaos.py) restarts the servers every other test talks to: last."""
    items.sort(key=lambda item: item.get_closest_marker("chaos") is not None)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings.from_env(os.environ)
