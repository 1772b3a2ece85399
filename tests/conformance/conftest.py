"""The ``store`` fixture: every conformance test runs against every store.

The stores are opened with ``clock="caller"``: the tests pass the time explicitly (``now=``)
and the store takes it as its own clock for timers too. Tests of the store's own clock open
stores of their own (``test_store_clock.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from durable._stores import Store, open_store

# A store's URL for one test; the request gives access to server fixtures
# (pg_migrated_database: a fresh database with durable's schema, skipped when DURABLE_PG_DSN is
# unset). Add a store by adding its factory.
STORE_URLS: dict[str, Callable[[pytest.FixtureRequest, Path], str]] = {
    "memory": lambda request, tmp_path: "memory://",
    "sqlite": lambda request, tmp_path: f"sqlite:///{tmp_path}/store.db",
    "postgres": lambda request, tmp_path: request.getfixturevalue("pg_migrated_database"),
}


@pytest.fixture(params=sorted(STORE_URLS))
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a fresh, empty store of each kind (a sync fixture: it may set up async ones)."""
    return STORE_URLS[request.param](request, tmp_path)


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    """A fresh, empty store of each kind, closed afterwards."""
    opened = await open_store(store_url, clock="caller")
    yield opened
    await opened.close()


@pytest.fixture
async def other_store(store: Store, store_url: str) -> AsyncIterator[Store]:
    """A second handle on the same data, as another process would have one (for races).

    A memory store lives in one process, so it is the same instance.
    """
    if store_url.startswith("memory:"):
        yield store
        return
    opened = await open_store(store_url, clock="caller")
    yield opened
    await opened.close()
