"""Fixtures of the ops checks."""

from __future__ import annotations

import pytest

from tests.unit.ops.tools import ensure_deb


@pytest.fixture(scope="session")
def promtool() -> str:
    """Debian's prometheus package provides promtool."""
    return ensure_deb("prometheus", "promtool")
