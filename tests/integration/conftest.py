from __future__ import annotations

from collections.abc import Iterator

import pytest
from psycopg_pool import ConnectionPool

from shop.settings import Settings
from tests.integration.db_helpers import primary_pool

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pool(request: pytest.FixtureRequest, settings: Settings) -> Iterator[ConnectionPool]:
    """A pool on the primary of the database the test module names in `DATABASE`, of `POOL_SIZE`
    connections at most (4 unless the module says more)."""
    database = getattr(request.module, "DATABASE", None)
    if database is None:
        raise LookupError(f"{request.module.__name__} uses `pool` but names no DATABASE")
    with primary_pool(settings, database, getattr(request.module, "POOL_SIZE", 4)) as pool:
        yield pool
