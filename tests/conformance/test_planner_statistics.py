"""The planner's picture of the task queues (``TimerStore.refresh_statistics``) and their
indexes (``TimerStore.rebuild_bloated_indexes``).

PostgreSQL keeps a statement's plan from when a queue table held a few rows: grown to
thousands, the table is read whole by every look-up that plan makes, until an ANALYZE (which
autovacuum may make a minute later, or never) makes every session plan again. The store
analyzes the tables that grew, and the housekeeping of ``durable server`` and of the embedded
dispatcher asks it to once a second.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from _support import as_role, eventually

import durable
from durable._dispatch._housekeeping import STATISTICS_EVERY, Housekeeper
from durable._stores import Store, open_store
from durable._stores.postgres._roles import create_tenant_role, drop_tenant_role, role_name

from durable_server import Server


async def test_only_a_store_with_a_planner_has_statistics_to_refresh(store: Store,
                                                                     store_url: str) -> None:
    # nothing grew in a fresh store; memory and SQLite never have anything to refresh
    assert await store.refresh_statistics() == []
    assert await store.rebuild_bloated_indexes() == []


@pytest.fixture
async def pg(pg_migrated_database: str) -> AsyncIterator[Store]:
    store = await open_store(pg_migrated_database, clock="caller")
    yield store
    await store.close()


@pytest.fixture
async def admin(pg_migrated_database: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(pg_migrated_database)
    yield conn
    await conn.close()


async def add_tasks(admin: asyncpg.Connection, first: int, count: int) -> None:
    """``count`` claimable workflow tasks, and their live rows counted in the statistics."""
    await admin.execute(
        "INSERT INTO workflow_tasks (tenant, workflow_id, workflow, visible_at, priority, "
        "fairness_key) SELECT 't', 'w' || g, 'Flow', 0, 0, '' "
        "FROM generate_series($1::int, $2::int) AS g", first, first + count - 1)
    if await admin.fetchval("SELECT to_regproc('pg_stat_force_next_flush') IS NOT NULL"):
        await admin.execute("SELECT pg_stat_force_next_flush()")
        await admin.execute("SELECT 1")  # the flush comes at the end of a transaction
    total = first + count - 1

    async def counted() -> bool:
        live: int = await admin.fetchval(
            "SELECT n_live_tup FROM pg_stat_user_tables WHERE relname = 'workflow_tasks'")
        return live >= total

    await eventually(counted, what="the statistics to count the new rows")


async def plan_of_a_lookup(conn: asyncpg.Connection) -> str:
    rows = await conn.fetch("EXPLAIN EXECUTE lookup('t', 'w1')")
    return "\n".join(row[0] for row in rows)


async def test_a_queue_that_grew_is_analyzed_and_plans_made_when_it_was_empty_follow_it(
        pg: Store, admin: asyncpg.Connection, pg_migrated_database: str) -> None:
    await admin.execute("ANALYZE workflow_tasks")  # counted empty, as after an idle vacuum
    session = await asyncpg.connect(pg_migrated_database)  # a worker's connection
    try:
        await session.execute("SET plan_cache_mode = force_generic_plan")  # kept, as cached
        await session.execute("PREPARE lookup(text, text) AS SELECT owner FROM workflow_tasks "
                              "WHERE tenant = $1 AND workflow_id = $2")
        assert "Seq Scan on workflow_tasks" in await plan_of_a_lookup(session)

        await add_tasks(admin, 1, 3000)
        # the plan made for an empty table reads all 3,000 rows for one...
        assert "Seq Scan on workflow_tasks" in await plan_of_a_lookup(session)
        assert await pg.refresh_statistics() == ["workflow_tasks"]
        # ... and is made again, from the table as it is, once the store analyzed it
        plan = await plan_of_a_lookup(session)
        assert "Seq Scan" not in plan and "workflow_tasks_pkey" in plan
    finally:
        await session.close()
    assert await pg.refresh_statistics() == []  # what the planner counts holds now


async def test_a_table_counted_empty_is_analyzed_once_it_holds_work_and_again_when_it_grows(
        pg: Store, admin: asyncpg.Connection) -> None:
    await admin.execute("ANALYZE workflow_tasks")
    await add_tasks(admin, 1, 40)
    assert await pg.refresh_statistics() == []  # a few rows: any plan reads them fast
    await add_tasks(admin, 41, 20)
    assert await pg.refresh_statistics() == ["workflow_tasks"]  # 60 where it counted none
    await add_tasks(admin, 61, 1000)
    assert await pg.refresh_statistics() == []  # 1,060: not 1,000 more than the 60 counted
    await add_tasks(admin, 1061, 100)
    assert await pg.refresh_statistics() == ["workflow_tasks"]


async def test_a_role_that_does_not_own_the_queues_leaves_them_to_their_owner(
        pg: Store, admin: asyncpg.Connection, pg_migrated_database: str) -> None:
    await admin.execute("ANALYZE workflow_tasks")
    await add_tasks(admin, 1, 60)
    tenant = f"t{uuid.uuid4().hex[:10]}"
    await create_tenant_role(pg_migrated_database, tenant)
    try:
        as_tenant = await open_store(as_role(pg_migrated_database, role_name(tenant)),
                                     clock="caller")
        try:  # PostgreSQL would skip its ANALYZE with a warning, every second: it does not ask
            assert await as_tenant.refresh_statistics() == []
        finally:
            await as_tenant.close()
    finally:
        await drop_tenant_role(pg_migrated_database, tenant)
    assert await pg.refresh_statistics() == ["workflow_tasks"]  # the owner's is done


async def index_pages(admin: asyncpg.Connection, index: str) -> int:
    pages: int = await admin.fetchval(
        "SELECT pg_relation_size(to_regclass($1)) / current_setting('block_size')::integer",
        index)
    return pages


async def churn(admin: asyncpg.Connection, count: int) -> None:
    """``count`` action tasks made and deleted, as plain steps do: the heap is vacuumed, the
    primary key keeps its pages."""
    await admin.execute(
        "INSERT INTO action_tasks (tenant, workflow_id, run_id, cmd, name, args, kwargs, "
        "attempt, visible_at, priority, fairness_key) "
        "SELECT 't', 'w' || g, 'r', 1, 'a', '\\x90', '\\x80', 1, 0, 0, '' "
        "FROM generate_series(1, $1::int) AS g", count)
    await admin.execute("DELETE FROM action_tasks")
    await admin.execute("VACUUM action_tasks")


async def test_a_task_table_whose_indexes_churn_left_empty_has_them_rebuilt(
        pg: Store, admin: asyncpg.Connection) -> None:
    await churn(admin, 30_000)
    before = await index_pages(admin, "action_tasks_pkey")
    assert before > 128
    assert await pg.rebuild_bloated_indexes() == ["action_tasks"]
    assert await index_pages(admin, "action_tasks_pkey") < 10 < before
    assert await pg.rebuild_bloated_indexes() == []  # nothing left to rebuild


async def test_an_index_a_rebuild_left_half_made_is_dropped_before_the_next(
        pg: Store, admin: asyncpg.Connection) -> None:
    # what an interrupted REINDEX ... CONCURRENTLY leaves: an invalid copy, kept up to date
    await admin.execute("CREATE INDEX action_tasks_pkey_ccnew ON action_tasks (tenant)")
    await admin.execute("UPDATE pg_index SET indisvalid = false "
                        "WHERE indexrelid = 'action_tasks_pkey_ccnew'::regclass")
    await churn(admin, 30_000)
    assert await pg.rebuild_bloated_indexes() == ["action_tasks"]
    names = {row[0] for row in await admin.fetch(
        "SELECT x.relname FROM pg_index AS i JOIN pg_class AS x ON x.oid = i.indexrelid "
        "WHERE i.indrelid = 'action_tasks'::regclass")}
    assert "action_tasks_pkey_ccnew" not in names and "action_tasks_pkey" in names
    assert all(row[0] for row in await admin.fetch(
        "SELECT indisvalid FROM pg_index WHERE indrelid = 'action_tasks'::regclass"))


async def test_durable_server_rebuilds_them_from_its_retention_loop(
        admin: asyncpg.Connection, pg_migrated_database: str) -> None:
    await churn(admin, 30_000)
    assert await index_pages(admin, "action_tasks_pkey") > 128

    async def rebuilt() -> bool:
        return await index_pages(admin, "action_tasks_pkey") < 10

    async with durable.connect(pg_migrated_database) as client, \
            Server(client, port=0, interval=0.01):
        await eventually(rebuilt, what="the server to rebuild action_tasks' indexes")


class _Counting:
    """A store that counts ``refresh_statistics`` calls (all the housekeeper calls here)."""

    def __init__(self) -> None:
        self.calls = 0

    async def refresh_statistics(self) -> list[str]:
        self.calls += 1
        return ["workflow_tasks"]


async def test_the_housekeeper_refreshes_the_statistics_once_a_second_at_most() -> None:
    store = _Counting()
    keeper = Housekeeper(store)  # type: ignore[arg-type]
    assert await keeper.refresh_statistics_if_due(100.0) == ["workflow_tasks"]
    assert await keeper.refresh_statistics_if_due(100.0 + STATISTICS_EVERY / 2) == []
    assert await keeper.refresh_statistics_if_due(100.0 + STATISTICS_EVERY) == ["workflow_tasks"]
    assert store.calls == 2
