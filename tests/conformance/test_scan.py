"""``Store.scan_executions``: every execution, oldest first, filtered and paged (every store)."""

from __future__ import annotations

from datetime import datetime, timezone

import durable
from durable._history import CompleteWorkflow
from durable._stores import ExecutionRecord, ExecutionUpdate, Store

from .test_store import NOW, T1, T2, claim, commit, create


def ids(records: list[ExecutionRecord]) -> list[str]:
    return [f"{r.tenant}/{r.workflow_id}" for r in records]


async def _fill(store: Store) -> None:
    await create(store, "wf-b", now=NOW)
    await create(store, "wf-a", now=NOW)  # same time: ordered by tenant, then id
    await create(store, "wf-a", tenant=T2, now=NOW)
    await create(store, "wf-c", workflow="Other", now=NOW + 1)
    await create(store, "wf-d", now=NOW + 2)
    [task] = [t for t in await claim(store, now=NOW + 2) if t.workflow_id == "wf-d"]
    assert await commit(store, task, CompleteWorkflow(1), now=NOW + 2,
                        update=ExecutionUpdate("completed", None, {}, result=1))


async def test_scan_orders_oldest_first_and_filters(store: Store) -> None:
    await _fill(store)
    every = ["tenant-a/wf-a", "tenant-a/wf-b", "tenant-b/wf-a", "tenant-a/wf-c", "tenant-a/wf-d"]
    assert ids(await store.scan_executions()) == every
    assert ids(await store.scan_executions(T1)) == [i for i in every if i.startswith(T1)]
    assert ids(await store.scan_executions(T2)) == ["tenant-b/wf-a"]
    assert ids(await store.scan_executions(workflow="Other")) == ["tenant-a/wf-c"]
    assert ids(await store.scan_executions(status="completed")) == ["tenant-a/wf-d"]
    assert ids(await store.scan_executions(since=NOW + 1)) == ["tenant-a/wf-c", "tenant-a/wf-d"]
    assert ids(await store.scan_executions(T1, workflow="Flow", status="running")) == [
        "tenant-a/wf-a", "tenant-a/wf-b"]
    assert await store.scan_executions("tenant-c") == []
    assert await store.scan_executions(since=NOW + 3) == []


async def test_scan_pages_through_everything_exactly_once(store: Store) -> None:
    await _fill(store)
    seen: list[ExecutionRecord] = []
    after = None
    while True:
        page = await store.scan_executions(limit=2, after=after)
        assert len(page) <= 2
        if not page:
            break
        seen += page
        after = page[-1]
    assert ids(seen) == ids(await store.scan_executions())
    assert len(set(ids(seen))) == 5
    first, *_ = await store.scan_executions(T1, limit=1)
    assert ids(await store.scan_executions(T1, after=first, limit=1)) == ["tenant-a/wf-b"]
    records = await store.scan_executions(T1)
    assert records[-1].status == "completed" and records[-1].result == 1


async def test_client_iter_executions_pages_and_filters(store: Store) -> None:
    await _fill(store)
    client = durable.Client(store, tenant=T1, tenants="*")
    every = [r async for r in client.iter_executions(page=2, all_tenants=True)]
    assert ids(every) == ids(await store.scan_executions())
    mine = [r async for r in client.iter_executions(page=1)]
    assert ids(mine) == ["tenant-a/wf-a", "tenant-a/wf-b", "tenant-a/wf-c", "tenant-a/wf-d"]
    since = datetime.fromtimestamp(NOW + 1, timezone.utc)
    assert ids([r async for r in client.iter_executions(since=since, page=1)]) == [
        "tenant-a/wf-c", "tenant-a/wf-d"]
    assert ids([r async for r in client.iter_executions(workflow="Other", status="running")]) \
        == ["tenant-a/wf-c"]
