"""What a workflow-task commit does beyond its own execution, atomically, on every store.

``WorkflowCommit(..., cancelled_actions=, starts=, signals=)``: dropping cancelled action
tasks, creating executions (child workflows) and the execution's next run (continue-as-new),
and appending inputs to other executions (a child's outcome, a cancellation).
"""

from __future__ import annotations

import asyncio
from typing import Any

from msgspec.structs import replace

from durable._history import (
    ActionCompleted, CancelRequested, CompleteWorkflow, Event, EventReceived, TaskCompleted,
    TimerFired, WorkflowStarted,
)
from durable._stores import (
    ExecutionUpdate, Signal, Start, Store, WorkflowCommit, WorkflowTask, workflow_ref,
)

from .test_store import (
    LEASE, NOW, RUNNING, T1, T2, act, claim, claim_actions, claim_one, completion, create,
    history, received, seqs, started, started_with,
)
from durable._history import StartTimer


async def commit(store: Store, task: WorkflowTask, *, owner: str = "w1", now: float = NOW,
                 update: ExecutionUpdate = RUNNING, expected: int | None = None,
                 **effects: Any) -> bool:
    """Commit a workflow task that issued no commands of its own, with ``effects``."""
    record = await store.get_execution(task.tenant, task.workflow_id)
    assert record is not None
    seq = record.last_seq + 1 if expected is None else expected
    return await store.commit_workflow_task(
        task, WorkflowCommit(owner, seq, [TaskCompleted(seq, now)], update, now, **effects))


async def task_of(store: Store, wf: str, tenant: str = T1, *, now: float = NOW) -> WorkflowTask:
    [task] = [t for t in await claim(store, now=now) if (t.tenant, t.workflow_id) == (tenant, wf)]
    return task


def child(wf: str = "child-1", *, tenant: str = T1, run: str = "") -> WorkflowStarted:
    return started(wf, tenant=tenant, run=run or f"run-{wf}", args=["x"])


def note(name: str) -> EventReceived:
    return EventReceived(0, 0.0, name)


# ---- cancelled actions ----------------------------------------------------------------------


async def test_cancelled_actions_are_dropped_whether_claimed_or_not(store: Store) -> None:
    await started_with(store, act(1), act(2), act(3))
    [running] = [t for t in await claim_actions(store, "a1", limit=3) if t.cmd == 1]
    await store.append_input(T1, "wf-1", received("x"), now=NOW)
    assert await commit(store, await claim_one(store), cancelled_actions=[1, 2])
    actions, _ = await store.pending_work(T1, "wf-1")
    assert [a.cmd for a in actions] == [3]
    assert not await store.extend_action_lease(running, "a1", lease=LEASE, now=NOW + 1)
    assert [t.cmd for t in await claim_actions(store, "a2", now=NOW + 2 * LEASE)] == [3]


async def test_a_cancelled_action_completing_late_is_still_recorded_once(store: Store) -> None:
    await started_with(store, act(1))
    [running] = await claim_actions(store, "a1")
    await store.append_input(T1, "wf-1", received("x"), now=NOW)
    assert await commit(store, await claim_one(store), cancelled_actions=[1])
    assert await store.complete_action_task(running, completion(running, "late"), now=NOW + 1)
    assert not await store.complete_action_task(running, completion(running), now=NOW + 2)
    assert [e.result for e in await history(store) if isinstance(e, ActionCompleted)] == ["late"]


# ---- starts: new executions -----------------------------------------------------------------


async def test_a_start_creates_the_execution_and_tells_the_committer(store: Store) -> None:
    await create(store)
    task = await claim_one(store)
    start = Start(child(), on_started=note("started"), on_exists=note("exists"))
    assert await commit(store, task, starts=[start], now=NOW + 1)
    record = await store.get_execution(T1, "child-1")
    assert record is not None
    assert (record.run_id, record.status, record.last_seq, record.created_at) == (
        "run-child-1", "running", 1, NOW + 1)
    assert await history(store, "child-1") == [replace(child(), seq=1, time=NOW + 1)]
    parent = await history(store)
    assert seqs(parent) == [1, 2, 3]
    assert parent[-1] == EventReceived(3, NOW + 1, "started")
    claimed = await claim(store, now=NOW + 1)
    assert {t.workflow_id for t in claimed} == {"wf-1", "child-1"}


async def test_a_start_of_a_taken_workflow_id_leaves_it_alone(store: Store) -> None:
    await create(store, "child-1")
    await create(store)
    task = await task_of(store, "wf-1")
    before = await history(store, "child-1")
    other = Start(child(run="another-run"), on_started=note("started"), on_exists=note("exists"))
    assert await commit(store, task, starts=[other])
    assert await history(store, "child-1") == before
    record = await store.get_execution(T1, "child-1")
    assert record is not None and record.run_id == "run-child-1"
    assert (await history(store))[-1] == EventReceived(3, NOW, "exists")


async def test_a_start_is_scoped_by_tenant(store: Store) -> None:
    await create(store, "child-1", tenant=T2)
    await create(store)
    assert await commit(store, await task_of(store, "wf-1"),
                        starts=[Start(child(), on_exists=note("exists"))])
    assert (await store.get_execution(T1, "child-1")) is not None
    assert [type(e) for e in await history(store)] == [WorkflowStarted, TaskCompleted]


async def test_a_start_by_a_commit_that_ends_the_committer(store: Store) -> None:
    await create(store)
    done = ExecutionUpdate("completed", None, {}, result=1)
    record = await store.get_execution(T1, "wf-1")
    assert record is not None
    task = await claim_one(store)
    events: list[Event] = [TaskCompleted(2, NOW), CompleteWorkflow(1).to_event(3, NOW)]
    assert await store.commit_workflow_task(task, WorkflowCommit(
        "w1", 2, events, done, NOW, starts=[Start(child(), on_started=note("started"))]))
    assert seqs(await history(store)) == [1, 2, 3]  # nothing after the end
    assert (await store.get_execution(T1, "child-1")) is not None


# ---- starts: the next run (continue-as-new) -------------------------------------------------


async def test_a_start_of_the_committer_is_its_next_run(store: Store) -> None:
    old = await started_with(store, act(1), StartTimer(2, 10.0, NOW + 10))
    [running] = await claim_actions(store, "a1")
    await store.append_input(T1, "wf-1", received("x"), dedup="k", now=NOW)
    task = await claim_one(store)
    nxt = replace(started(run="run-2", args=[2]), version="2")
    assert await commit(store, task, starts=[Start(nxt)], now=NOW + 5,
                        update=ExecutionUpdate("running", "s", {"d": 1}))
    record = await store.get_execution(T1, "wf-1")
    assert record is not None
    assert (record.run_id, record.version, record.status, record.last_seq) == (
        "run-2", "2", "running", 1)
    assert (record.state, record.data, record.result, record.created_at) == (None, {}, None, NOW)
    assert await history(store) == [replace(nxt, seq=1, time=NOW + 5)]
    assert seqs(await store.read_history(T1, "wf-1", run_id=old.run_id)) == [1, 2, 3, 4, 5, 6]
    assert await store.pending_work(T1, "wf-1") == ([], [])
    assert len(await store.fire_due_timers(now=NOW + 100, limit=10)) == 0
    assert await claim(store, now=NOW + 5) == [WorkflowTask(T1, "wf-1", "Flow", 1)]
    # the old run's action may finish: its outcome is not the new run's
    assert not await store.complete_action_task(running, completion(running), now=NOW + 6)
    assert seqs(await history(store)) == [1]
    # dedup keys are per run
    assert await store.append_input(T1, "wf-1", received("x"), dedup="k", now=NOW + 7) == 2


# ---- signals --------------------------------------------------------------------------------


async def test_signals_append_inputs_to_other_executions(store: Store) -> None:
    await started_with(store, wf="target")
    await create(store)
    task = await task_of(store, "wf-1")
    signals = [Signal(T1, "target", note("a"), dedup="k"),
               Signal(T1, "target", note("dup"), dedup="k"),
               Signal(T1, "target", note("b"), run_id="run-target"),
               Signal(T1, "target", note("other run"), run_id="run-old"),
               Signal(T1, "missing", note("nobody")),
               Signal(T2, "target", note("other tenant"))]
    assert await commit(store, task, signals=signals, now=NOW + 1)
    names = [e.name for e in await history(store, "target") if isinstance(e, EventReceived)]
    assert names == ["a", "b"]
    assert seqs(await history(store, "target")) == [1, 2, 3, 4]
    assert await store.get_execution(T1, "missing") is None
    assert await store.get_execution(T2, "target") is None
    assert [t.workflow_id for t in await claim(store, now=NOW + 1)] == ["target"]


async def test_signals_skip_ended_executions(store: Store) -> None:
    await create(store, "target")
    done = ExecutionUpdate("cancelled", None, {})
    assert await commit(store, await task_of(store, "target"), update=done)
    await create(store)
    before = await history(store, "target")
    assert await commit(store, await task_of(store, "wf-1"),
                        signals=[Signal(T1, "target", CancelRequested(0, 0.0, "why"))])
    assert await history(store, "target") == before


async def test_signals_follow_starts(store: Store) -> None:
    await create(store)
    task = await claim_one(store)
    starts = [Start(child()), Start(started(run="run-2"))]
    signals = [Signal(T1, "child-1", CancelRequested(0, 0.0, "parent ended"), "cancel"),
               Signal(T1, "wf-1", note("carried"), run_id="run-2")]
    assert await commit(store, task, starts=starts, signals=signals)
    assert [type(e) for e in await history(store, "child-1")] == [WorkflowStarted, CancelRequested]
    assert [type(e) for e in await history(store)] == [WorkflowStarted, EventReceived]


async def test_a_terminal_commit_reports_to_another_execution(store: Store) -> None:
    await started_with(store, wf="parent")
    await create(store, "child-1")
    task = await task_of(store, "child-1")
    done = ExecutionUpdate("completed", None, {}, result="r")
    assert await commit(store, task, update=done,
                        signals=[Signal(T1, "parent", note("child done"), "c1", "run-parent")])
    assert (await history(store, "parent"))[-1] == EventReceived(3, NOW, "child done")
    record = await store.get_execution(T1, "child-1")
    assert record is not None and record.status == "completed"


# ---- all or nothing -------------------------------------------------------------------------


async def test_a_refused_commit_has_no_effects(store: Store) -> None:
    await started_with(store, act(1), wf="target")
    await started_with(store, act(1))
    await store.append_input(T1, "wf-1", received("x"), now=NOW)
    task = await task_of(store, "wf-1")
    await store.append_input(T1, "wf-1", received("raced"), now=NOW)
    effects: dict[str, Any] = {
        "cancelled_actions": [1], "starts": [Start(child(), on_started=note("started"))],
        "signals": [Signal(T1, "target", note("hello"))]}
    assert not await commit(store, task, expected=5, **effects)
    assert [a.cmd for a in (await store.pending_work(T1, "wf-1"))[0]] == [1]
    assert await store.get_execution(T1, "child-1") is None
    assert [type(e) for e in await history(store, "target")][-1] is not EventReceived
    assert not await commit(store, task, owner="w2", **effects)
    assert await store.get_execution(T1, "child-1") is None


async def test_commits_signalling_each_other_at_once_never_deadlock(store: Store,
                                                                    other_store: Store) -> None:
    """Each appends to the other's history, so the later one conflicts on its expected seq and
    writes nothing; neither waits for the other forever (nor fails as a deadlock victim)."""
    await create(store, "a")
    await create(store, "b")
    tasks = {t.workflow_id: t for t in await claim(store)}
    for _ in range(5):
        results = await asyncio.gather(
            commit(store, tasks["a"], expected=2, signals=[Signal(T1, "b", note("from a"))]),
            commit(other_store, tasks["b"], expected=2, signals=[Signal(T1, "a", note("from b"))]))
        if results != [True, True]:  # the memory store runs one after the other: both win
            break
    assert True in results
    for wf in ("a", "b"):
        events = await history(store, wf)
        assert seqs(events) == list(range(1, len(events) + 1))
        assert len([e for e in events if isinstance(e, TaskCompleted)]) <= 1


async def test_timer_fired_for_an_old_run_is_not_recorded_in_the_new_one(store: Store) -> None:
    await started_with(store, StartTimer(1, 10.0, NOW + 10))
    await store.append_input(T1, "wf-1", received("x"), now=NOW)
    assert await commit(store, await claim_one(store), starts=[Start(started(run="run-2"))])
    assert len(await store.fire_due_timers(now=NOW + 100, limit=10)) == 0
    assert not any(isinstance(e, TimerFired) for e in await history(store))


async def test_a_claim_that_brings_history_names_its_run(store: Store) -> None:
    await create(store)
    await store.append_input(T1, "wf-1", received("x"), now=NOW)
    assert await commit(store, await claim_one(store), starts=[Start(started(run="run-2"))])
    await store.append_input(T1, "wf-1", received("y"), now=NOW)
    [task], _ = await store.claim_refs([workflow_ref(T1, "wf-1")], "w1", workflows=["Flow"],
                                       actions=[], lease=LEASE, now=NOW,
                                       history_after=lambda tenant, workflow_id: 1)
    if task.history is not None:  # a store may bring it (PostgreSQL does)
        assert task.run_id == "run-2"
        assert [e.seq for e in task.history] == [2]
    else:
        assert task.run_id == ""
    assert [e.seq for e in await store.read_history(T1, "wf-1", run_id="run-wf-1",
                                                    after_seq=2)] == [3]
