from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.stack import SupervisedStack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def stack() -> Iterator[SupervisedStack]:
    running = SupervisedStack()
    running.start()
    yield running
    running.stop()
