"""``Store.restart_execution``: a start's next run under a workflow id that an execution has
(``client.start``'s id policies), on every store: only from the run the caller saw, a running
run only with the event that ends it, atomically, and one winner among concurrent restarts."""

from __future__ import annotations

import asyncio

from msgspec.structs import replace

from durable._history import (
    ChildFailed, CompleteWorkflow, ErrorInfo, EventReceived, StartTimer, WorkflowStarted,
    WorkflowTerminated,
)
from durable._stores import ExecutionUpdate, Signal, Store

from .test_store import (
    LEASE, NOW, T1, act, claim, claim_actions, claim_one, commit, create, history, started,
    started_with,
)

DONE = ExecutionUpdate("completed", None, {}, result=1)
END = WorkflowTerminated(0, 0.0, "replaced", "run-2")


def next_run(run: str = "run-2", wf: str = "wf-1", priority: int = 0) -> WorkflowStarted:
    return replace(started(wf, run=run, args=[2]), previous_run="run-wf-1", priority=priority,
                   fairness_key="k" if priority else None)


async def test_a_closed_run_is_followed_by_the_new_run(store: Store) -> None:
    await create(store)
    task = await claim_one(store)
    assert await commit(store, task, CompleteWorkflow(1), update=DONE)
    assert await store.restart_execution(next_run(priority=5), run_id="run-wf-1", now=NOW + 5)
    record = await store.get_execution(T1, "wf-1")
    assert record is not None
    assert (record.run_id, record.status, record.last_seq, record.result) == \
        ("run-2", "running", 1, None)
    assert (record.created_at, record.priority, record.fairness_key) == (NOW + 5, 5, "k")
    [first] = await history(store)
    assert isinstance(first, WorkflowStarted) and first.args == [2]
    assert first.previous_run == "run-wf-1" and first.seq == 1 and first.time == NOW + 5
    old = await store.read_history(T1, "wf-1", run_id="run-wf-1")
    assert len(old) == 3  # untouched: started, task completed, completed
    [again] = await claim(store, now=NOW + 5)
    assert again.workflow_id == "wf-1"
    assert len(await store.verify_history(T1, "wf-1")) == 2
    assert await store.append_input(T1, "wf-1", EventReceived(0, 0.0, "e", 1), now=NOW + 6) == 2


async def test_only_from_the_run_the_caller_saw(store: Store) -> None:
    assert not await store.restart_execution(next_run(), run_id="run-wf-1", now=NOW)  # none
    await create(store)
    task = await claim_one(store)
    assert await commit(store, task, CompleteWorkflow(1), update=DONE)
    assert not await store.restart_execution(next_run(), run_id="run-other", now=NOW)
    assert (await store.get_execution(T1, "wf-1")).run_id == "run-wf-1"  # type: ignore[union-attr]


async def test_a_running_run_only_with_its_end(store: Store) -> None:
    await started_with(store, act(1), StartTimer(2, 100.0, NOW + 100))
    assert not await store.restart_execution(next_run(), run_id="run-wf-1", now=NOW + 1)
    assert len(await history(store)) == 4  # nothing written
    await store.append_input(T1, "wf-1", EventReceived(0, 0.0, "e", 1), now=NOW + 1)
    task = await claim_one(store, now=NOW + 1)  # a worker holds the old run's task
    assert await store.restart_execution(next_run(), run_id="run-wf-1", now=NOW + 2, end=END)
    old = await store.read_history(T1, "wf-1", run_id="run-wf-1")
    assert old[-1] == replace(END, seq=6, time=NOW + 2)
    actions, timers = await store.pending_work(T1, "wf-1")
    assert actions == [] and timers == []  # the old run's work is gone
    assert await claim_actions(store, now=NOW + 2) == []
    assert await store.fire_due_timers(now=NOW + 200, limit=10) == []
    # The old run's worker cannot commit into the new run: its lease went with the task.
    assert not await commit(store, task, CompleteWorkflow(1), update=DONE, expected=2,
                            now=NOW + 3)
    [fresh] = await claim(store, now=NOW + 3)
    assert fresh.workflow_id == "wf-1"
    assert [type(e) for e in await history(store)] == [WorkflowStarted]


async def test_signals_are_appended_with_the_restart(store: Store) -> None:
    await create(store, "parent")
    await create(store)
    failed = ChildFailed(0, 0.0, 3, ErrorInfo("WorkflowTerminated", "replaced"))
    signal = Signal(T1, "parent", failed, "c3", "run-parent")
    assert await store.restart_execution(next_run(), run_id="run-wf-1", now=NOW + 1, end=END,
                                         signals=[signal])
    assert (await history(store, "parent"))[-1] == replace(failed, seq=2, time=NOW + 1)
    assert not await store.restart_execution(next_run("run-3"), run_id="run-2", now=NOW + 2,
                                             end=replace(END, run_id="run-3"), signals=[signal]) \
        or len(await history(store, "parent")) == 2  # the dedup key: told once


async def test_concurrent_restarts_one_wins(store: Store, other_store: Store) -> None:
    await create(store)
    task = await claim_one(store)
    assert await commit(store, task, CompleteWorkflow(1), update=DONE, now=NOW)
    for round_ in range(5):
        current = (await store.get_execution(T1, "wf-1")).run_id  # type: ignore[union-attr]
        won = await asyncio.gather(*(
            s.restart_execution(next_run(f"run-{round_}-{i}"), run_id=current, now=NOW + 1,
                                end=replace(END, run_id=f"run-{round_}-{i}"))
            for i, s in enumerate([store, other_store, store, other_store])))
        assert sorted(won) == [False, False, False, True], won
        record = await store.get_execution(T1, "wf-1")
        assert record is not None and record.run_id == f"run-{round_}-{won.index(True)}"
        assert len(await history(store)) == 1
    assert len(await store.verify_history(T1, "wf-1")) == 6
    assert all(check.error is None for check in await store.verify_history(T1, "wf-1"))
    assert LEASE > 0
