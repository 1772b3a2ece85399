"""``Store.page_executions`` / ``count_executions``: pages of executions for people, newest
first, filtered and keyset-paged, and counts per status (every store)."""

from __future__ import annotations

import pytest

from durable._history import CompleteWorkflow, TaskCompleted
from durable._stores import ExecutionRecord, ExecutionUpdate, Start, Store, WorkflowCommit
from durable._stores._listing import (
    LIST_STATUSES, ExecutionQuery, cursor_of, decode_cursor, encode_cursor,
)
from durable.errors import InvalidArgumentError
from msgspec.structs import replace

from .test_store import NOW, RUNNING, T1, T2, claim, claim_one, commit, create, started

EVERY = frozenset({T1, T2})


def ids(records: list[ExecutionRecord]) -> list[str]:
    return [f"{r.tenant}/{r.workflow_id}" for r in records]


async def _fill(store: Store) -> None:
    """a-1..a-3 running (a-2 held), b-1 completed, on another queue c-1, continued d-1."""
    for i, wf in enumerate(["a-1", "a-2", "a-3", "b-1"]):
        await create(store, wf, now=NOW + i)
    await create(store, "a-1", tenant=T2, now=NOW + 1)  # same time as T1's a-2
    record, _ = await store.create_execution(replace(started("c-1"), queue="slow"), now=NOW + 5)
    await create(store, "d-1", now=NOW + 6)
    tasks = {t.workflow_id: t for t in await claim(store, now=NOW + 7) if t.tenant == T1}
    assert await commit(store, tasks["b-1"], CompleteWorkflow(1), now=NOW + 7,
                        update=ExecutionUpdate("completed", None, {}, result=1))
    await store.release_workflow_task(tasks["a-2"], "w1", delay=60.0, error="diverged",
                                      now=NOW + 7)
    nxt = replace(started("d-1", run="run-d-2"), version="2")
    assert await store.commit_workflow_task(tasks["d-1"], WorkflowCommit(
        "w1", 2, [TaskCompleted(2, NOW + 7)], RUNNING, NOW + 7, starts=[Start(nxt)]))


async def page(store: Store, **filters: object) -> list[str]:
    filters.setdefault("tenants", EVERY)
    return ids(await store.page_executions(ExecutionQuery(**filters)))  # type: ignore[arg-type]


async def test_a_page_is_newest_first_and_filtered(store: Store) -> None:
    await _fill(store)
    assert await page(store, tenants=None) == [
        "tenant-a/d-1", "tenant-a/c-1", "tenant-a/b-1", "tenant-a/a-3", "tenant-a/a-2",
        "tenant-b/a-1", "tenant-a/a-1"]
    assert await page(store, tenants=frozenset({T2})) == ["tenant-b/a-1"]
    assert await page(store, status="held") == ["tenant-a/a-2"]
    assert await page(store, status="running") == [
        "tenant-a/d-1", "tenant-a/c-1", "tenant-a/a-3", "tenant-b/a-1", "tenant-a/a-1"]
    assert await page(store, status="completed") == ["tenant-a/b-1"]
    assert await page(store, status="continued") == ["tenant-a/d-1"]
    assert await page(store, status="failed") == []
    assert await page(store, workflow="Flow", since=NOW + 5) == ["tenant-a/d-1", "tenant-a/c-1"]
    assert await page(store, since=NOW + 1, until=NOW + 2) == ["tenant-a/a-2", "tenant-b/a-1"]
    assert await page(store, id_prefix="a-") == [
        "tenant-a/a-3", "tenant-a/a-2", "tenant-b/a-1", "tenant-a/a-1"]
    assert await page(store, id_prefix="a-1", tenants=frozenset({T1})) == ["tenant-a/a-1"]
    assert await page(store, id_prefix="%") == []  # LIKE's wildcards are literal
    assert await page(store, id_prefix="_-1") == []
    assert await page(store, workflow="Other") == []
    [held] = await store.page_executions(ExecutionQuery(status="held"))
    assert held.task_error == "diverged" and held.status == "running"


async def test_pages_meet_every_row_once_whatever_the_filter(store: Store) -> None:
    await _fill(store)
    for status in (None, "running"):
        query = ExecutionQuery(status=status)
        whole = await store.page_executions(query)
        seen: list[ExecutionRecord] = []
        after = None
        while batch := await store.page_executions(query, after=after, limit=2):
            seen += batch
            after = decode_cursor(encode_cursor(batch[-1]))
            assert after == cursor_of(batch[-1])
        assert ids(seen) == ids(whole) and len(set(ids(seen))) == len(whole)


async def test_counts_per_status_are_capped(store: Store) -> None:
    await _fill(store)
    counts = await store.count_executions(ExecutionQuery(), cap=100)
    assert counts == {"running": 5, "held": 1, "completed": 1, "failed": 0, "cancelled": 0,
                      "continued": 1}
    assert list(counts) == list(LIST_STATUSES)
    assert (await store.count_executions(ExecutionQuery(), cap=2))["running"] == 2
    mine = await store.count_executions(ExecutionQuery(tenants=frozenset({T2}), status="held"),
                                        cap=100)
    assert mine["running"] == 1 and sum(mine.values()) == 1


async def test_a_continued_execution_counts_its_runs_in_every_store(store: Store) -> None:
    await _fill(store)
    task = await claim_one(store, now=NOW + 8)
    assert task.workflow_id == "d-1"
    nxt = replace(started("d-1", run="run-d-3"), version="3")
    assert await store.commit_workflow_task(task, WorkflowCommit(
        "w1", 2, [TaskCompleted(2, NOW + 8)], RUNNING, NOW + 8, starts=[Start(nxt)]))
    assert await page(store, status="continued") == ["tenant-a/d-1"]


def test_bad_filters_and_cursors_are_typed_errors() -> None:
    with pytest.raises(InvalidArgumentError, match="status is one of running, held"):
        ExecutionQuery(status="done")
    with pytest.raises(InvalidArgumentError, match="not a cursor"):
        decode_cursor("nonsense!")
