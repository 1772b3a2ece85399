"""Shared pytest fixtures.

Real PostgreSQL / Redis servers: scripts/test always exports DURABLE_PG_DSN and
DURABLE_REDIS_URL (see scripts/with_servers.py); a bare `pytest` without them skips the tests that need a server.
It also exports DURABLE_REDIS_CLUSTER_URL (a three-master Redis Cluster, `redis+cluster://...`):
a test module that overrides `redis_url` with `any_redis_url` runs on single Redis and on the
cluster; `_support.open_redis(url)` is a client for either.
"""
from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from _support import open_redis


def _server_url(var: str) -> str:
    url = os.environ.get(var)
    if not url:
        pytest.skip(f"{var} is not set; run the suite with scripts/test, which provides the server")
    return url


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    """DSN of a PostgreSQL server (any database on it may be used as a maintenance database)."""
    return _server_url("DURABLE_PG_DSN")


@pytest.fixture
async def pg_database(pg_dsn: str) -> AsyncIterator[str]:
    """A fresh, empty, uniquely named database on the pg_dsn server, dropped afterwards; yields
    its DSN."""
    async with _database(pg_dsn) as url:
        yield url


@pytest.fixture(scope="session")
def pg_template(pg_dsn: str) -> Iterator[str]:
    """The name of a database that durable has migrated, for ``pg_migrated_database`` to copy
    (migrating each test's database took ~110 ms of its ~190)."""
    import asyncio

    import durable

    name = f"durable_template_{uuid.uuid4().hex[:16]}"

    async def migrated() -> None:
        await _admin(pg_dsn, f'CREATE DATABASE "{name}"')
        async with durable.connect(_with_path(pg_dsn, name)) as client:
            await client.store.get_execution("", "")  # connected: the schema is current

    asyncio.run(migrated())
    yield name
    asyncio.run(_admin(pg_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def pg_migrated_database(pg_dsn: str, pg_template: str) -> AsyncIterator[str]:
    """``pg_database``, with durable's schema in place already (a copy of ``pg_template``)."""
    async with _database(pg_dsn, template=pg_template) as url:
        yield url


@contextlib.asynccontextmanager
async def _database(pg_dsn: str, template: str | None = None) -> AsyncIterator[str]:
    name = f"durable_test_{uuid.uuid4().hex[:16]}"
    await _admin(pg_dsn, f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template
                                                          else ""))
    try:
        yield _with_path(pg_dsn, name)
    finally:
        await _admin(pg_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _admin(pg_dsn: str, statement: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(pg_dsn)
    try:
        await admin.execute(statement)
    finally:
        await admin.close()


def _with_path(dsn: str, name: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of a Redis server (shared: keep every key under the redis_prefix of your test)."""
    return _server_url("DURABLE_REDIS_URL")


@pytest.fixture(params=["redis", "cluster"])
def any_redis_url(request: pytest.FixtureRequest) -> str:
    """Single Redis, then the Redis Cluster: a module that defines
    ``redis_url = any_redis_url``-style override runs its Redis tests on both."""
    if request.param == "cluster":
        return _server_url("DURABLE_REDIS_CLUSTER_URL")
    return _server_url("DURABLE_REDIS_URL")


@pytest.fixture
async def redis_prefix(redis_url: str) -> AsyncIterator[str]:
    """A unique key prefix such as 'durable-test:3f2a...:'; keys under it are deleted afterwards."""
    prefix = f"durable-test:{uuid.uuid4().hex[:16]}:"
    yield prefix
    client = open_redis(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()
