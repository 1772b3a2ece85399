"""Retention on every store: a sweep deletes exactly the closed executions past their retention,
with every row of theirs (counted per table, before and after), and leaves running and
unexpired ones as they were; per-workflow and per-tenant retention; a child goes with its
parent.

Executions are made by a real client and worker (histories, action tasks, timers, requests,
snapshots, children, and on PostgreSQL a database action's recorded outcome); the sweeps pass
a ``now`` in the future instead of waiting.
"""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from _support import eventually

import durable
from durable._retention import sweep
from durable._stores import Store, Sweep
from durable._stores.memory import MemoryStore
from durable._stores.postgres._retention import EXECUTION_TABLES as PG_TABLES
from durable._stores.sqlite._retention import EXECUTION_TABLES as SQLITE_TABLES
from durable.errors import ArgumentTypeError, ValidationError

DAY = 86400.0
T1, T2 = "rt-one", "rt-two"

Rows = dict[str, Counter[tuple[str, str]]]  # table -> (tenant, workflow id) -> rows


@durable.action(name="rt_step")
def step(n: int) -> int:
    return n + 1


@durable.action(name="rt_db", transaction=True)
async def db_write(conn: Any, n: int) -> int:
    return int(await conn.fetchval("SELECT $1::int + 1", n))


@durable.workflow(name="RTChild", retention=timedelta(days=60))
async def child(ctx: durable.Context, n: int) -> int:
    return await ctx.run(step, n)


@durable.workflow(name="RTParent")
async def parent(ctx: durable.Context, n: int, db: bool) -> int:
    ctx.set_state("started")
    ctx.data["n"] = n
    bumps = 0

    @ctx.on_update("bump")
    def bump(by: int) -> int:
        nonlocal bumps
        bumps += by
        return bumps

    total = await ctx.run(step, n)
    if db:
        total += await ctx.run(db_write, n)
    kid = await ctx.start_child(child, n, id=f"{ctx.info.workflow_id}-kid")
    total += await kid.result()
    await ctx.wait_for("finish", timeout=timedelta(hours=1))
    ctx.set_state("done")
    return total + bumps


@durable.workflow(name="RTShort", retention=1.0)
async def short(ctx: durable.Context) -> str:
    return await ctx.run(step, 1) and "ok"


@pytest.fixture
async def client(store_url: str) -> AsyncIterator[durable.Client]:
    async with durable.connect(store_url, tenants="*") as client:
        client.poll_interval = 0.02
        yield client


def worker(client: durable.Client) -> durable.Worker:
    pg = client.store.transaction_driver == "asyncpg"
    return durable.Worker(client, [parent, child, short], [step, db_write] if pg else [step],
                          poll_interval=0.02, snapshot_every=2)


async def run_parent(client: durable.Client, wf: str, *, tenant: str = T1,
                     finish: bool = True) -> None:
    db = client.store.transaction_driver == "asyncpg"
    handle = await client.start(parent, 1, db, id=wf, tenant=tenant)
    kid = client.get_handle(f"{wf}-kid", tenant=tenant)

    async def kid_done() -> bool:
        record = await client.store.get_execution(tenant, kid.workflow_id)
        return record is not None and record.status == "completed"

    async with worker(client) as w:  # runs in the background for the block
        await eventually(kid_done, what="the child's end")
        assert await handle.update("bump", 2) == 2
        if finish:
            await handle.send("finish")
            await handle.result(timeout=10)
        await w.run_until_idle()
    status = (await handle.describe()).status
    assert status == ("completed" if finish else "running")


async def run_short(client: durable.Client, wf: str, tenant: str = T1) -> None:
    handle = await client.start(short, id=wf, tenant=tenant)
    async with worker(client):
        assert await handle.result(timeout=10) == "ok"


async def rows(client: durable.Client, url: str) -> Rows:
    """Rows per table, by (tenant, workflow id), for every table that holds an execution's."""
    store = client.store
    if isinstance(store, MemoryStore):
        return _memory_rows(store)
    if url.startswith("sqlite"):
        return _sqlite_rows(url[len("sqlite:///"):])
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return {t: Counter({(r[0], r[1]): r[2] for r in await conn.fetch(
            f"SELECT tenant, workflow_id, count(*) FROM {t} GROUP BY 1, 2")})
            for t in ("executions", *PG_TABLES)}
    finally:
        await conn.close()


def _sqlite_rows(path: str) -> Rows:
    conn = sqlite3.connect(path)
    try:
        return {t: Counter({(r[0], r[1]): r[2] for r in conn.execute(
            f"SELECT tenant, workflow_id, count(*) FROM {t} GROUP BY 1, 2")})
            for t in SQLITE_TABLES}
    finally:
        conn.close()


def _memory_rows(store: Any) -> Rows:
    def count(keys: Any, sizes: Any = None) -> Counter[tuple[str, str]]:
        found: Counter[tuple[str, str]] = Counter()
        for key in keys:
            found[key[:2]] += 1 if sizes is None else len(sizes[key])
        return found

    return {"executions": count(store._executions), "events": count(
        store._histories, store._histories), "runs": count(store._runs, store._runs),
        "dedup": count(store._dedup), "workflow_tasks": count(store._wf_tasks),
        "action_tasks": count(store._actions), "timers": count(store._timers),
        "requests": count(store._requests, store._requests),
        "snapshots": count(store._snapshots, store._snapshots), "beats": count(store._beats)}


def of(found: Rows, *keys: tuple[str, str]) -> Rows:
    return {t: Counter({k: n for k, n in c.items() if k in keys}) for t, c in found.items()}


def gone(found: Rows, *keys: tuple[str, str]) -> bool:
    return not any(found[t][k] for t in found for k in keys)


async def swept(store: Store, *, after: float, default: float = 30 * DAY,
                **options: Any) -> list[tuple[str, str]]:
    deleted: list[tuple[str, str]] = []
    while True:
        result = await sweep(store, Sweep(time.time() + after, default, limit=3, **options))
        deleted += result.deleted
        if not result.more:
            return deleted


async def test_expired_closed_executions_go_with_every_row_and_the_rest_stay(
        client: durable.Client, store_url: str) -> None:
    await run_parent(client, "p1")
    await run_parent(client, "p2", finish=False)  # running: kept, whatever its age
    await run_parent(client, "p3", tenant=T2)
    before = await rows(client, store_url)
    p1, p2 = (T1, "p1"), (T1, "p2")
    expired = [p1, (T1, "p1-kid"), (T2, "p3"), (T2, "p3-kid")]
    for table in ("executions", "events", "snapshots"):
        assert all(before[table][k] for k in expired), table  # there is something to delete
    assert before["requests"][p1] and before["requests"][(T2, "p3")]  # the updates' records
    assert before["timers"][p2] and before["requests"][p2]
    if "action_results" in before:
        assert before["action_results"][p1]

    assert await swept(client.store, after=29 * DAY) == []  # none expired yet
    assert await rows(client, store_url) == before
    deleted = await swept(client.store, after=31 * DAY)  # p2-kid: RTChild keeps 60 days
    assert sorted(deleted) == sorted(expired)
    after = await rows(client, store_url)
    assert gone(after, *expired)
    kept = [p2, (T1, "p2-kid")]
    assert of(after, *kept) == of(before, *kept)  # untouched, row for row
    assert (await client.get_handle("p2", tenant=T1).describe()).status == "running"
    await client.get_handle("p2", tenant=T1).send("finish")
    async with worker(client) as w:
        await w.run_until_idle()
    assert (await client.get_handle("p2", tenant=T1).describe()).status == "completed"


async def test_a_workflows_retention_comes_first_then_its_tenants(
        client: durable.Client, store_url: str) -> None:
    await run_short(client, "s1")  # RTShort keeps 1 s
    await run_parent(client, "p1")
    await run_parent(client, "p2", tenant=T2)
    await client.set_retention(timedelta(seconds=5), tenant=T2)
    assert (await client.store.retention_settings()).tenants == {T2: 5.0}
    assert (await client.store.retention_settings()).workflows["RTShort"] == 1.0
    before = await rows(client, store_url)
    deleted = await swept(client.store, after=10, default=DAY)
    assert sorted(deleted) == [(T1, "s1"), (T2, "p2"), (T2, "p2-kid")]  # the kid with p2
    after = await rows(client, store_url)
    assert gone(after, *deleted)
    assert of(after, (T1, "p1"), (T1, "p1-kid")) == of(before, (T1, "p1"), (T1, "p1-kid"))
    await client.set_retention(None, tenant=T2)
    assert (await client.store.retention_settings()).tenants == {}


async def test_fixed_cutoff_ignores_settings_and_a_tenant_limits_it(
        client: durable.Client, store_url: str) -> None:
    await run_parent(client, "p1")
    await run_parent(client, "p2", tenant=T2)
    dry = await client.collect_garbage(0.0, tenant=T2, dry_run=True)
    assert dry == [(T2, "p2-kid"), (T2, "p2")]  # children first
    assert (await rows(client, store_url))["executions"][(T2, "p2")] == 1
    assert await client.collect_garbage(0.0, tenant=T2) == dry
    found = await rows(client, store_url)
    assert gone(found, *dry) and found["executions"][(T1, "p1-kid")] == 1
    assert await client.collect_garbage(0.0, all_tenants=True) == [(T1, "p1-kid"), (T1, "p1")]
    assert gone(await rows(client, store_url), (T1, "p1"), (T1, "p1-kid"))


async def test_a_deleted_workflow_id_can_be_started_again(client: durable.Client) -> None:
    await run_short(client, "again")
    assert await client.collect_garbage(0.0, tenant=T1) == [(T1, "again")]
    await run_short(client, "again")
    assert len(await client.get_handle("again", tenant=T1).history()) > 1


async def test_bad_retention_is_a_typed_error(client: durable.Client) -> None:
    with pytest.raises(ValidationError, match="0 seconds or more"):
        await client.collect_garbage(-1.0)
    with pytest.raises(ValidationError, match="0 seconds or more"):
        await client.set_retention(timedelta(days=-1))
    with pytest.raises(ArgumentTypeError):
        await client.set_retention("30d")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        durable.workflow(retention=-5)
    with pytest.raises(ValidationError, match="finite"):
        await client.collect_garbage(retention=float("nan"))
    with pytest.raises(ValidationError, match="between 1 and"):
        await client.collect_garbage(limit=0)
