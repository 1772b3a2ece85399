"""``migrate_store``: brings a store's schema up to date, idempotently, even when run at once."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import asyncpg
import pytest

from durable._history import WorkflowStarted
from durable._stores import migrate_store, open_store
from durable._stores._migrations import migration_files

# Migration numbers may leave gaps (each engineer has a range); versions are what the files say.
SQLITE_VERSIONS = [v for v, _, _ in migration_files("durable._stores.sqlite")]
POSTGRES_VERSIONS = [v for v, _, _ in migration_files("durable._stores.postgres")]
SQLITE_VERSION = SQLITE_VERSIONS[-1]
POSTGRES_VERSION = POSTGRES_VERSIONS[-1]


async def _versions(pg_url: str, schema: str = "public") -> list[int]:
    conn = await asyncpg.connect(pg_url)
    try:
        rows = await conn.fetch(f'SELECT version FROM "{schema}".schema_version ORDER BY version')
    finally:
        await conn.close()
    return [row[0] for row in rows]


async def test_memory_has_no_schema() -> None:
    assert await migrate_store("memory://") == 0


async def test_unknown_url_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported store URL"):
        await migrate_store("mysql://localhost/db")


async def test_sqlite_migrate_is_idempotent_and_keeps_data(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/m.db"
    assert await migrate_store(url) == SQLITE_VERSION
    store = await open_store(url)
    await store.create_execution(WorkflowStarted(0, 0.0, "F", "1", "wf", "r", "t", []), now=1)
    await store.close()
    assert await migrate_store(url) == SQLITE_VERSION
    with sqlite3.connect(tmp_path / "m.db") as conn:
        versions = conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
        assert versions == [(v,) for v in SQLITE_VERSIONS]
        assert conn.execute("SELECT count(*) FROM executions").fetchone() == (1,)
    conn.close()


async def test_sqlite_upgrades_a_version_1_file(tmp_path: Path) -> None:
    from durable._stores.sqlite import _statements as sql

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    [(_, name, script)] = [m for m in migration_files(sql.__package__) if m[0] == 1]
    conn.execute(sql.CREATE_SCHEMA_VERSION)
    conn.executescript(script)
    conn.execute(sql.INSERT_SCHEMA_VERSION, (1, name, 0.0))
    conn.execute("INSERT INTO workflow_tasks (tenant, workflow_id, workflow, visible_at) "
                 "VALUES ('t', 'wf', 'F', 5.0)")
    conn.close()
    assert await migrate_store(f"sqlite:///{path}") == SQLITE_VERSION
    store = await open_store(f"sqlite:///{path}")
    try:  # a task from before the outbox counts as never dispatched
        refs = await store.dispatch_due(now=500.0, older_than=100.0, limit=10)
        assert [(r.kind, r.workflow_id) for r in refs] == [("w", "wf")]
    finally:
        await store.close()


async def test_sqlite_concurrent_migrations_agree(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/race.db"
    assert await asyncio.gather(*(migrate_store(url) for _ in range(3))) == [SQLITE_VERSION] * 3


async def test_postgres_migrate_is_idempotent(pg_database: str) -> None:
    assert await migrate_store(pg_database) == POSTGRES_VERSION
    assert await migrate_store(pg_database) == POSTGRES_VERSION
    store = await open_store(pg_database)  # opening migrates too: nothing left to do
    await store.close()
    assert await _versions(pg_database) == POSTGRES_VERSIONS


async def test_postgres_concurrent_migrations_agree(pg_database: str) -> None:
    versions = await asyncio.gather(*(migrate_store(pg_database) for _ in range(3)),
                                    open_store(pg_database))
    await versions[-1].close()
    assert versions[:3] == [POSTGRES_VERSION] * 3
    assert await _versions(pg_database) == POSTGRES_VERSIONS


async def test_postgres_concurrent_migrations_of_a_new_schema_agree(pg_database: str) -> None:
    url = f"{pg_database}?schema=tenant_space"
    assert await asyncio.gather(*(migrate_store(url) for _ in range(3))) == [
        POSTGRES_VERSION] * 3
    assert await _versions(pg_database, "tenant_space") == POSTGRES_VERSIONS


async def test_postgres_newer_schema_is_refused(pg_database: str) -> None:
    from durable.errors import StoreUnavailableError

    assert await migrate_store(pg_database) == POSTGRES_VERSION
    conn = await asyncpg.connect(pg_database)
    try:
        await conn.execute("INSERT INTO schema_version VALUES (999, 'future', 0)")
    finally:
        await conn.close()
    with pytest.raises(StoreUnavailableError, match="upgrade durable"):
        await migrate_store(pg_database)
    with pytest.raises(StoreUnavailableError, match="upgrade durable"):
        await open_store(pg_database)


def test_renumbered_records_and_missing_numbers_are_found() -> None:
    from durable._stores._migrations import pending, renumbered

    shipped = [(1, "0001_initial.sql", ""), (2, "0002_commit_effects.sql", ""),
               (3, "0003_requests.sql", ""), (9, "0009_later.sql", "")]
    recorded = [(1, "0001_initial.sql"), (10, "0010_commit_effects.sql"), (9, "0009_later.sql")]
    assert renumbered(recorded, shipped) == [(10, 2, "0002_commit_effects.sql")]
    assert [m[0] for m in pending(shipped, [1, 2, 9])] == [3]  # an earlier number, landed later


async def test_sqlite_applies_a_migration_that_landed_after_a_later_one(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/gap.db"
    assert await migrate_store(url) == SQLITE_VERSION
    with sqlite3.connect(tmp_path / "gap.db") as conn:  # as if 0004 had not shipped yet
        conn.execute("DELETE FROM schema_version WHERE version = 4")
        conn.execute("DROP TABLE snapshots")
    conn.close()
    assert await migrate_store(url) == SQLITE_VERSION
    with sqlite3.connect(tmp_path / "gap.db") as conn:
        assert conn.execute("SELECT count(*) FROM snapshots").fetchone() == (0,)
        versions = conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
    conn.close()
    assert versions == [(v,) for v in SQLITE_VERSIONS]
