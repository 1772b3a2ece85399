"""The ``Store`` conformance suite: every store must pass every test here.

Each test runs once per entry of ``STORE_URLS`` (``conftest.py``). Time is passed explicitly
(``now=``), never slept. The outbox and hint claims are in ``test_dispatch.py``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from msgspec.structs import replace

from durable._history import (
    ActionCompleted, ActionFailed, ActionScheduled, CancelTimer, CancelWorkflow, Command,
    CompleteWorkflow, ErrorInfo, Event, EventReceived, FailWorkflow, ScheduleAction, SetState,
    StartTimer, TaskCompleted, TimerFired, WorkflowStarted,
)
from durable._stores import (
    ActionTask, ExecutionRecord, ExecutionUpdate, Store, TimerRecord, WorkflowCommit, WorkflowTask,
)
from durable.errors import WorkflowNotFoundError

T1, T2 = "tenant-a", "tenant-b"
NOW = 1_000.0
LEASE = 30.0
RUNNING = ExecutionUpdate("running", None, {})


# ---- helpers --------------------------------------------------------------------------------


def started(wf: str = "wf-1", *, tenant: str = T1, workflow: str = "Flow", run: str = "",
            args: list[Any] | None = None) -> WorkflowStarted:
    """A ``WorkflowStarted`` with placeholder seq/time, as the client builds it."""
    return WorkflowStarted(0, 0.0, workflow, "1", wf, run or f"run-{wf}", tenant,
                           [1] if args is None else args)


async def create(store: Store, wf: str = "wf-1", *, tenant: str = T1, workflow: str = "Flow",
                 now: float = NOW) -> ExecutionRecord:
    record, created = await store.create_execution(started(wf, tenant=tenant, workflow=workflow),
                                                   now=now)
    assert created
    return record


async def claim(store: Store, owner: str = "w1", *, now: float = NOW, limit: int = 10,
                workflows: tuple[str, ...] = ("Flow",)) -> list[WorkflowTask]:
    return await store.claim_workflow_tasks(workflows, owner, lease=LEASE, now=now, limit=limit)


async def claim_one(store: Store, owner: str = "w1", *, now: float = NOW) -> WorkflowTask:
    [task] = await claim(store, owner, now=now, limit=1)
    return task


async def claim_actions(store: Store, owner: str = "a1", *, now: float = NOW, limit: int = 10,
                        names: tuple[str, ...] = ("act",),
                        lease: float = LEASE) -> list[ActionTask]:
    return await store.claim_action_tasks(names, owner, lease=lease, now=now, limit=limit)


async def commit(store: Store, task: WorkflowTask, *commands: Command, owner: str = "w1",
                 now: float = NOW, update: ExecutionUpdate = RUNNING, expected: int | None = None,
                 visible_at: float | None = None) -> bool:
    """Commit a workflow task that issued ``commands``, with the effects a worker derives."""
    record = await store.get_execution(task.tenant, task.workflow_id)
    assert record is not None
    seq = record.last_seq + 1 if expected is None else expected
    events: list[Event] = [TaskCompleted(seq, now)]
    events += [c.to_event(seq + 1 + i, now) for i, c in enumerate(commands)]
    run = (task.tenant, task.workflow_id, record.run_id)
    actions = [ActionTask(*run, c.cmd, c.name, c.args, c.kwargs, queue=c.queue,
                          visible_at=now if visible_at is None else visible_at)
               for c in commands if isinstance(c, ScheduleAction)]
    timers = [TimerRecord(*run, c.cmd, c.fire_at) for c in commands if isinstance(c, StartTimer)]
    cancelled = [c.cmd for c in commands if isinstance(c, CancelTimer)]
    return await store.commit_workflow_task(task, WorkflowCommit(
        owner, seq, events, update, now, actions=actions, timers=timers,
        cancelled_timers=cancelled))


async def started_with(store: Store, *commands: Command, wf: str = "wf-1", tenant: str = T1,
                       visible_at: float | None = None) -> ExecutionRecord:
    """Create an execution and commit its first workflow task, which issued ``commands``."""
    await create(store, wf, tenant=tenant)
    [task] = [t for t in await claim(store) if (t.tenant, t.workflow_id) == (tenant, wf)]
    assert await commit(store, task, *commands, visible_at=visible_at)
    record = await store.get_execution(tenant, wf)
    assert record is not None
    return record


async def history(store: Store, wf: str = "wf-1", tenant: str = T1) -> list[Event]:
    return await store.read_history(tenant, wf)


def seqs(events: list[Event]) -> list[int]:
    return [e.seq for e in events]


def received(name: str) -> EventReceived:
    return EventReceived(0, 0.0, name, {"n": name})


def act(cmd: int, name: str = "act") -> ScheduleAction:
    return ScheduleAction(cmd, name, [cmd], {"k": cmd})


def completion(task: ActionTask, result: Any = "ok") -> ActionCompleted:
    return ActionCompleted(0, 0.0, task.cmd, result, task.attempt)


# ---- executions -----------------------------------------------------------------------------


async def test_create_execution_records_started_event_and_task(store: Store) -> None:
    record, created = await store.create_execution(started(args=[1, "x"]), now=NOW)
    assert created
    assert record == ExecutionRecord(T1, "wf-1", "run-wf-1", "Flow", "1", "running", NOW, NOW, 1)
    assert await store.get_execution(T1, "wf-1") == record
    assert await history(store) == [replace(started(args=[1, "x"]), seq=1, time=NOW)]
    assert await claim(store) == [WorkflowTask(T1, "wf-1", "Flow", 1)]


async def test_an_eager_start_creates_the_task_leased_to_its_worker(store: Store) -> None:
    from durable._stores import workflow_ref

    record, created = await store.create_execution(started(), now=NOW,
                                                   lease_to=("eager", NOW + LEASE))
    assert created and record.status == "running"
    assert await claim(store, "other") == []  # leased: nobody else gets it ...
    assert await store.claim_refs([workflow_ref(T1, "wf-1")], "other", workflows=("Flow",),
                                  actions=(), lease=LEASE, now=NOW) == ([], [])
    assert await store.dispatch_due(now=NOW + 1, older_than=0, limit=10) == []
    task = WorkflowTask(T1, "wf-1", "Flow", 1, run_id=record.run_id)
    assert await commit(store, task, owner="eager")  # ... and its owner commits it
    await store.create_execution(started("wf-2"), now=NOW, lease_to=("crashed", NOW + LEASE))
    [taken] = await claim(store, "other", now=NOW + LEASE)  # its owner died: once it expires
    assert taken.workflow_id == "wf-2" and taken.attempt == 2


async def test_create_is_idempotent_per_tenant_and_workflow_id(store: Store) -> None:
    first = await create(store)
    again, created = await store.create_execution(
        started(run="other-run", args=[2]), now=NOW + 5)
    assert not created
    assert again == first
    assert [e.args for e in await history(store) if isinstance(e, WorkflowStarted)] == [[1]]
    assert len(await claim(store)) == 1


async def test_create_is_isolated_across_tenants(store: Store) -> None:
    a = await create(store, tenant=T1)
    b, created = await store.create_execution(started(tenant=T2, args=[2]), now=NOW + 1)
    assert created and b.tenant == T2 and b.created_at == NOW + 1
    assert await store.get_execution(T1, "wf-1") == a
    assert await store.get_execution(T2, "wf-1") == b
    assert await store.get_execution("tenant-c", "wf-1") is None
    await store.append_input(T1, "wf-1", received("only-a"), now=NOW)
    assert seqs(await history(store, tenant=T1)) == [1, 2]
    assert [type(e) for e in await history(store, tenant=T2)] == [WorkflowStarted]
    claimed = await claim(store, now=NOW + 1)
    assert {(t.tenant, t.workflow_id) for t in claimed} == {(T1, "wf-1"), (T2, "wf-1")}


async def test_get_execution_unknown_is_none(store: Store) -> None:
    assert await store.get_execution(T1, "nope") is None


async def test_list_executions_filters_orders_and_limits(store: Store) -> None:
    for i, wf in enumerate(["wf-a", "wf-b", "wf-c"]):
        await create(store, wf, now=NOW + i)
    await create(store, "wf-x", tenant=T2, now=NOW + 3)
    task = [t for t in await claim(store, now=NOW + 3) if t.workflow_id == "wf-b"][0]
    assert await commit(store, task, CompleteWorkflow(1),
                        update=ExecutionUpdate("completed", None, {}, result=1))

    def ids(records: list[ExecutionRecord]) -> list[str]:
        return [r.workflow_id for r in records]

    assert ids(await store.list_executions(T1)) == ["wf-c", "wf-b", "wf-a"]
    assert ids(await store.list_executions(T1, status="completed")) == ["wf-b"]
    assert ids(await store.list_executions(T1, status="running")) == ["wf-c", "wf-a"]
    assert ids(await store.list_executions(T1, limit=2)) == ["wf-c", "wf-b"]
    assert ids(await store.list_executions(T2)) == ["wf-x"]
    assert ids(await store.list_executions()) == ["wf-x", "wf-c", "wf-b", "wf-a"]
    assert ids(await store.list_executions(status="running", limit=2)) == ["wf-x", "wf-c"]
    assert await store.list_executions("tenant-c") == []


async def test_list_executions_breaks_time_ties_by_workflow_id(store: Store) -> None:
    await create(store, "wf-a")
    await create(store, "wf-b")
    assert [r.workflow_id for r in await store.list_executions(T1)] == ["wf-b", "wf-a"]


# ---- history --------------------------------------------------------------------------------


async def test_read_history_in_order_after_seq_and_by_run(store: Store) -> None:
    await create(store)
    for name in ["a", "b", "c"]:
        await store.append_input(T1, "wf-1", received(name), now=NOW + 1)
    events = await history(store)
    assert seqs(events) == [1, 2, 3, 4]
    assert [e.name for e in events[1:] if isinstance(e, EventReceived)] == ["a", "b", "c"]
    assert await store.read_history(T1, "wf-1", after_seq=2) == events[2:]
    assert await store.read_history(T1, "wf-1", after_seq=4) == []
    assert await store.read_history(T1, "wf-1", run_id="run-wf-1") == events
    assert await store.read_history(T1, "wf-1", run_id="other-run") == []
    assert await store.read_history(T1, "nope") == []
    assert await store.read_history(T2, "wf-1") == []


async def test_history_round_trips_every_field(store: Store) -> None:
    await started_with(store, act(1), StartTimer(2, 5.0, NOW + 5), SetState("waiting"))
    await store.append_input(T1, "wf-1", EventReceived(0, 0.0, "go", {"x": [1, 2]}, "k"),
                             now=NOW + 1)
    events = await history(store)
    assert events[1:] == [
        TaskCompleted(2, NOW), ActionScheduled(3, NOW, 1, "act", [1], {"k": 1}),
        StartTimer(2, 5.0, NOW + 5).to_event(4, NOW), SetState("waiting").to_event(5, NOW),
        EventReceived(6, NOW + 1, "go", {"x": [1, 2]}, "k")]


async def test_payload_builtins_round_trip(store: Store) -> None:
    value = {"at": datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc), "raw": b"\x00\xff",
             "nested": [1, 2.5, "\u00e9", None, True, {"k": []}], "big": 2**63 - 1}
    await started_with(store, ScheduleAction(1, "act", [value], {"v": value}))
    await store.append_input(T1, "wf-1", EventReceived(0, 0.0, "e", value), now=NOW)
    [action], _ = await store.pending_work(T1, "wf-1")
    assert (action.args, action.kwargs) == ([value], {"v": value})
    assert (await history(store))[-1] == EventReceived(4, NOW, "e", value)
    error = ErrorInfo("KeyError", "\u00e9", "Traceback ...")
    assert await commit(store, await claim_one(store), FailWorkflow(error),
                        update=ExecutionUpdate("failed", "s", {"v": value}, value, error))
    record = await store.get_execution(T1, "wf-1")
    assert record is not None
    assert (record.data, record.result, record.error) == ({"v": value}, value, error)


# ---- append_input ---------------------------------------------------------------------------


async def test_append_input_assigns_dense_seq_and_time(store: Store) -> None:
    await create(store)
    assert [await store.append_input(T1, "wf-1", received(str(i)), now=NOW + i)
            for i in range(1, 4)] == [2, 3, 4]
    events = await history(store)
    assert seqs(events) == [1, 2, 3, 4]
    assert [e.time for e in events] == [NOW, NOW + 1, NOW + 2, NOW + 3]
    record = await store.get_execution(T1, "wf-1")
    assert record is not None and (record.last_seq, record.updated_at) == (4, NOW + 3)


async def test_append_input_dedups_per_execution(store: Store) -> None:
    await create(store)
    await create(store, "wf-2")
    await create(store, tenant=T2)
    assert await store.append_input(T1, "wf-1", received("a"), dedup="k1", now=NOW) == 2
    assert await store.append_input(T1, "wf-1", received("b"), dedup="k1", now=NOW) is None
    assert await store.append_input(T1, "wf-1", received("c"), dedup="k2", now=NOW) == 3
    assert await store.append_input(T1, "wf-1", received("d"), now=NOW) == 4
    assert await store.append_input(T1, "wf-2", received("e"), dedup="k1", now=NOW) == 2
    assert await store.append_input(T2, "wf-1", received("f"), dedup="k1", now=NOW) == 2
    names = [e.name for e in await history(store) if isinstance(e, EventReceived)]
    assert names == ["a", "c", "d"]
    record = await store.get_execution(T1, "wf-1")
    assert record is not None and record.last_seq == 4


async def test_append_input_refused_after_terminal_event(store: Store) -> None:
    await create(store)
    task = await claim_one(store)
    assert await commit(store, task, CompleteWorkflow("r"),
                        update=ExecutionUpdate("completed", None, {}, result="r"))
    before = await history(store)
    assert await store.append_input(T1, "wf-1", received("late"), now=NOW + 1) is None
    assert await store.append_input(T1, "wf-1", received("late"), dedup="k", now=NOW) is None
    assert await history(store) == before
    assert await claim(store, now=NOW + 100) == []


async def test_append_input_unknown_execution_raises(store: Store) -> None:
    await create(store)
    with pytest.raises(WorkflowNotFoundError):
        await store.append_input(T1, "nope", received("x"), now=NOW)
    with pytest.raises(WorkflowNotFoundError):
        await store.append_input(T2, "wf-1", received("x"), now=NOW)
    assert seqs(await history(store)) == [1]


async def test_append_input_makes_execution_runnable(store: Store) -> None:
    await started_with(store)
    assert await claim(store, now=NOW + 100) == []
    await store.append_input(T1, "wf-1", received("x"), now=NOW + 1)
    assert await claim(store, now=NOW + 1) == [WorkflowTask(T1, "wf-1", "Flow", 1)]


async def test_append_input_wakes_a_delayed_task(store: Store) -> None:
    await create(store)
    task = await claim_one(store)
    await store.release_workflow_task(task, "w1", delay=60.0, error=None, now=NOW)
    assert await claim(store, now=NOW + 1) == []
    await store.append_input(T1, "wf-1", received("x"), now=NOW + 2)
    assert await claim(store, now=NOW + 2) == [WorkflowTask(T1, "wf-1", "Flow", 2)]


# ---- commit_workflow_task -------------------------------------------------------------------


async def test_commit_appends_events_and_finishes_the_task(store: Store) -> None:
    await create(store)
    task = await claim_one(store)
    update = ExecutionUpdate("running", "waiting", {"k": [1, 2]})
    assert await commit(store, task, SetState("waiting"), now=NOW + 1, update=update)
    assert seqs(await history(store)) == [1, 2, 3]
    record = await store.get_execution(T1, "wf-1")
    assert record is not None
    assert (record.last_seq, record.updated_at, record.status) == (3, NOW + 1, "running")
    assert (record.state, record.data, record.task_error) == ("waiting", {"k": [1, 2]}, None)
    assert await claim(store, "w2", now=NOW + 1000) == []


async def test_commit_conflict_on_expected_seq_writes_nothing(store: Store) -> None:
    await create(store)
    task = await claim_one(store)
    await store.append_input(T1, "wf-1", received("raced"), now=NOW + 1)
    before = await history(store)
    record = await store.get_execution(T1, "wf-1")
    done = await commit(store, task, act(1), StartTimer(2, 1.0, NOW + 1), CompleteWorkflow(1),
                        expected=2, update=ExecutionUpdate("completed", "s", {"a": 1}, result=1))
    assert not done
    assert await history(store) == before
    assert await store.get_execution(T1, "wf-1") == record
    assert await store.pending_work(T1, "wf-1") == ([], [])
    assert await claim(store, "w2", now=NOW + 1) == []  # still leased by w1
    assert await commit(store, task, expected=3)
    assert seqs(await history(store)) == [1, 2, 3]


async def test_commit_needs_the_lease_owner(store: Store) -> None:
    await create(store)
    task = await claim_one(store, "w1")
    assert not await commit(store, task, act(1), owner="w2")
    stolen = await claim_one(store, "w2", now=NOW + LEASE)  # w1's lease expired
    assert stolen.attempt == 2
    assert not await commit(store, task, act(1), owner="w1")
    assert seqs(await history(store)) == [1]
    assert await store.pending_work(T1, "wf-1") == ([], [])
    assert await commit(store, stolen, owner="w2")
    assert not await commit(store, stolen, owner="w2")  # the task is done


async def test_commit_without_a_task_or_execution_is_refused(store: Store) -> None:
    await started_with(store)
    task = WorkflowTask(T1, "wf-1", "Flow")
    assert not await commit(store, task, act(1))
    ghost = WorkflowTask(T2, "wf-1", "Flow")
    assert not await store.commit_workflow_task(
        ghost, WorkflowCommit("w1", 2, [TaskCompleted(2, NOW)], RUNNING, NOW))
    assert await store.get_execution(T2, "wf-1") is None


async def test_commit_stores_actions_timers_and_cancellations(store: Store) -> None:
    record = await started_with(store, act(1), StartTimer(2, 10.0, NOW + 10),
                                StartTimer(3, 20.0, NOW + 20), act(4, "other"))
    run = (T1, "wf-1", record.run_id)
    actions, timers = await store.pending_work(T1, "wf-1")
    assert actions == [ActionTask(*run, 1, "act", [1], {"k": 1}, visible_at=NOW),
                       ActionTask(*run, 4, "other", [4], {"k": 4}, visible_at=NOW)]
    assert timers == [TimerRecord(*run, 2, NOW + 10), TimerRecord(*run, 3, NOW + 20)]
    await store.append_input(T1, "wf-1", received("x"), now=NOW)
    assert await commit(store, await claim_one(store), CancelTimer(2))
    assert (await store.pending_work(T1, "wf-1"))[1] == [TimerRecord(*run, 3, NOW + 20)]
    assert len(await store.fire_due_timers(now=NOW + 15, limit=10)) == 0


@pytest.mark.parametrize("update", [
    ExecutionUpdate("completed", "done", {"k": 1}, result={"ok": [1, 2]}),
    ExecutionUpdate("failed", None, {}, error=ErrorInfo("ValueError", "bad", "tb")),
    ExecutionUpdate("cancelled", None, {}),
])
async def test_terminal_commit_drops_work_and_sets_outcome(store: Store,
                                                           update: ExecutionUpdate) -> None:
    await started_with(store, act(1), StartTimer(2, 10.0, NOW + 10))
    await store.append_input(T1, "wf-1", received("x"), now=NOW)
    endings: dict[str, Command] = {
        "completed": CompleteWorkflow(update.result), "cancelled": CancelWorkflow(),
        "failed": FailWorkflow(update.error or ErrorInfo("", ""))}
    ending = endings[update.status]
    assert await commit(store, await claim_one(store), act(3), ending, update=update)
    record = await store.get_execution(T1, "wf-1")
    assert record is not None
    assert (record.status, record.state, record.data) == (update.status, update.state, update.data)
    assert (record.result, record.error) == (update.result, update.error)
    assert await store.pending_work(T1, "wf-1") == ([], [])
    assert await claim_actions(store, now=NOW + 100) == []
    assert len(await store.fire_due_timers(now=NOW + 100, limit=10)) == 0
    assert await claim(store, now=NOW + 100) == []
    assert await store.next_wakeup(now=NOW) is None


# ---- workflow task claims -------------------------------------------------------------------


async def test_claim_workflow_tasks_honours_names(store: Store) -> None:
    await create(store, "wf-1", workflow="Flow")
    await create(store, "wf-2", workflow="Other")
    assert await claim(store, workflows=("Missing",)) == []
    assert await claim(store, workflows=()) == []
    assert await claim(store, workflows=("Other",)) == [WorkflowTask(T1, "wf-2", "Other", 1)]
    assert await claim(store, workflows=("Flow", "Other")) == [WorkflowTask(T1, "wf-1", "Flow", 1)]


async def test_claim_workflow_tasks_respects_limit(store: Store) -> None:
    for wf in ["wf-1", "wf-2", "wf-3"]:
        await create(store, wf)
    first = await claim(store, "w1", limit=2)
    second = await claim(store, "w2", limit=2)
    assert (len(first), len(second)) == (2, 1)
    assert {t.workflow_id for t in first + second} == {"wf-1", "wf-2", "wf-3"}
    assert await claim(store, "w3") == []


async def test_claim_workflow_tasks_honours_visibility_and_lease_expiry(store: Store) -> None:
    await create(store, now=NOW)
    assert await claim(store, now=NOW - 1) == []  # not visible yet
    assert await claim(store, "w1", now=NOW) == [WorkflowTask(T1, "wf-1", "Flow", 1)]
    assert await claim(store, "w2", now=NOW + LEASE - 0.5) == []
    assert await claim(store, "w2", now=NOW + LEASE) == [WorkflowTask(T1, "wf-1", "Flow", 2)]
    assert await claim(store, "w3", now=NOW + 2 * LEASE) == [WorkflowTask(T1, "wf-1", "Flow", 3)]


async def test_release_workflow_task_with_delay_and_error(store: Store) -> None:
    await create(store)
    task = await claim_one(store, "w1")
    await store.release_workflow_task(task, "w2", delay=0.0, error="not mine", now=NOW)
    assert await claim(store, "w2", now=NOW + 1) == []  # a non-owner cannot release
    await store.release_workflow_task(task, "w1", delay=5.0, error="nondeterminism", now=NOW + 1)
    record = await store.get_execution(T1, "wf-1")
    assert record is not None and record.task_error == "nondeterminism"
    assert await store.next_wakeup(now=NOW + 1) == NOW + 6
    assert await claim(store, "w2", now=NOW + 5.5) == []
    retried = await claim_one(store, "w2", now=NOW + 6)
    assert retried.attempt == 2
    assert await commit(store, retried, owner="w2", now=NOW + 6)
    record = await store.get_execution(T1, "wf-1")
    assert record is not None and record.task_error is None


async def test_new_workflow_task_starts_at_attempt_one(store: Store) -> None:
    await create(store)
    task = await claim_one(store)
    await store.release_workflow_task(task, "w1", delay=0.0, error=None, now=NOW)
    assert await commit(store, await claim_one(store))  # attempt 2
    await store.append_input(T1, "wf-1", received("x"), now=NOW)
    assert (await claim_one(store)).attempt == 1


# ---- action tasks ---------------------------------------------------------------------------


async def test_claim_action_tasks_honours_names_limit_and_visibility(store: Store) -> None:
    await started_with(store, act(1), act(2), act(3), act(4, "other"), visible_at=NOW + 5)
    assert await claim_actions(store, now=NOW + 4) == []
    assert await claim_actions(store, now=NOW + 5, names=("missing",)) == []
    first = await claim_actions(store, "a1", now=NOW + 5, limit=2)
    second = await claim_actions(store, "a2", now=NOW + 5, limit=2)
    assert (len(first), len(second)) == (2, 1)
    assert sorted(t.cmd for t in first + second) == [1, 2, 3]
    assert all((t.attempt, t.last_error, t.visible_at) == (1, None, NOW + 5) for t in first)
    assert [t.cmd for t in await claim_actions(store, now=NOW + 5, names=("other",))] == [4]
    assert first[0].args == [first[0].cmd] and first[0].kwargs == {"k": first[0].cmd}


async def test_action_lease_expiry_and_extension(store: Store) -> None:
    await started_with(store, act(1))
    [task] = await claim_actions(store, "a1", now=NOW)
    assert await claim_actions(store, "a2", now=NOW + LEASE - 1) == []
    assert await store.extend_action_lease(task, "a1", lease=LEASE, now=NOW + 20)
    assert await claim_actions(store, "a2", now=NOW + LEASE) == []  # extended to NOW + 50
    assert not await store.extend_action_lease(task, "a2", lease=LEASE, now=NOW + 21)
    assert [t.cmd for t in await claim_actions(store, "a2", now=NOW + 50)] == [1]
    assert not await store.extend_action_lease(task, "a1", lease=LEASE, now=NOW + 51)
    assert await claim_actions(store, "a3", now=NOW + 79) == []  # a2's lease still holds


async def test_reclaiming_an_expired_action_lease_counts_an_attempt(store: Store) -> None:
    await started_with(store, act(1))
    [first] = await claim_actions(store, "a1", now=NOW)
    [second] = await claim_actions(store, "a2", now=NOW + LEASE)  # a1 died mid-attempt
    [third] = await claim_actions(store, "a3", now=NOW + 2 * LEASE)
    assert (first.attempt, second.attempt, third.attempt) == (1, 2, 3)
    assert first.idempotency_key == second.idempotency_key == third.idempotency_key
    [pending], _ = await store.pending_work(T1, "wf-1")
    assert pending.attempt == 3


async def test_retry_action_task_schedules_next_attempt(store: Store) -> None:
    await started_with(store, act(1))
    [task] = await claim_actions(store, "a1", now=NOW)
    await store.retry_action_task(task, "a2", visible_at=NOW, error="not mine", now=NOW)
    assert await claim_actions(store, "a2", now=NOW + 1) == []  # a non-owner cannot retry
    await store.retry_action_task(task, "a1", visible_at=NOW + 10, error="boom", now=NOW + 1)
    [pending], _ = await store.pending_work(T1, "wf-1")
    assert (pending.attempt, pending.visible_at, pending.last_error) == (2, NOW + 10, "boom")
    assert await store.next_wakeup(now=NOW + 1) == NOW + 10
    assert await claim_actions(store, "a2", now=NOW + 9) == []
    [again] = await claim_actions(store, "a2", now=NOW + 10)
    assert (again.attempt, again.last_error, again.idempotency_key) == (
        2, "boom", task.idempotency_key)


async def test_complete_action_task_first_completion_wins(store: Store) -> None:
    await started_with(store, act(1))
    [task] = await claim_actions(store, "a1", now=NOW)
    assert await store.complete_action_task(task, completion(task, {"r": 1}), now=NOW + 2)
    last = (await history(store))[-1]
    assert last == ActionCompleted(4, NOW + 2, 1, {"r": 1}, 1)
    failed = ActionFailed(0, 0.0, 1, ErrorInfo("E", "late"))
    assert not await store.complete_action_task(task, completion(task, "again"), now=NOW + 3)
    assert not await store.complete_action_task(task, failed, now=NOW + 3)
    assert seqs(await history(store)) == [1, 2, 3, 4]
    assert await store.pending_work(T1, "wf-1") == ([], [])
    assert await claim_actions(store, now=NOW + 1000) == []
    assert await claim(store, now=NOW + 2) == [WorkflowTask(T1, "wf-1", "Flow", 1)]


async def test_complete_action_task_by_a_stale_attempt_still_wins_once(store: Store) -> None:
    await started_with(store, act(1))
    [task] = await claim_actions(store, "a1", now=NOW)
    [stolen] = await claim_actions(store, "a2", now=NOW + LEASE)
    assert await store.complete_action_task(task, completion(task, "first"), now=NOW + 31)
    assert not await store.complete_action_task(stolen, completion(stolen, "second"), now=NOW + 32)
    results = [e.result for e in await history(store) if isinstance(e, ActionCompleted)]
    assert results == ["first"]


async def test_complete_action_task_after_terminal_or_unknown_is_refused(store: Store) -> None:
    record = await started_with(store, act(1))
    [task] = await claim_actions(store, now=NOW)
    await store.append_input(T1, "wf-1", received("x"), now=NOW)
    cancelled = ExecutionUpdate("cancelled", None, {})
    assert await commit(store, await claim_one(store), CancelWorkflow(), update=cancelled)
    before = await history(store)
    assert not await store.complete_action_task(task, completion(task), now=NOW + 1)
    assert await history(store) == before
    ghost = ActionTask(T2, "wf-1", record.run_id, 1, "act", [], {})
    assert not await store.complete_action_task(ghost, completion(ghost), now=NOW + 1)
    assert await store.get_execution(T2, "wf-1") is None


# ---- timers ---------------------------------------------------------------------------------


async def test_fire_due_timers_fires_each_due_timer_exactly_once(store: Store) -> None:
    await started_with(store, StartTimer(1, 30.0, NOW + 30), StartTimer(2, 10.0, NOW + 10),
                       StartTimer(3, 20.0, NOW + 20))
    assert len(await store.fire_due_timers(now=NOW + 5, limit=10)) == 0
    assert len(await store.fire_due_timers(now=NOW + 20, limit=10)) == 2
    assert len(await store.fire_due_timers(now=NOW + 20, limit=10)) == 0
    fired = [e for e in await history(store) if isinstance(e, TimerFired)]
    assert [(e.cmd, e.time) for e in fired] == [(2, NOW + 20), (3, NOW + 20)]
    assert [t.cmd for t in (await store.pending_work(T1, "wf-1"))[1]] == [1]
    assert await claim(store, now=NOW + 20) == [WorkflowTask(T1, "wf-1", "Flow", 1)]
    assert len(await store.fire_due_timers(now=NOW + 100, limit=10)) == 1
    assert len(await store.fire_due_timers(now=NOW + 100, limit=10)) == 0
    fired = [e for e in await history(store) if isinstance(e, TimerFired)]
    assert sorted(e.cmd for e in fired) == [1, 2, 3]
    assert seqs(await history(store)) == list(range(1, 9))


async def test_fire_due_timers_respects_limit_across_tenants(store: Store) -> None:
    await started_with(store, StartTimer(1, 1.0, NOW + 1), StartTimer(2, 2.0, NOW + 2))
    await started_with(store, StartTimer(1, 3.0, NOW + 3), tenant=T2)
    assert len(await store.fire_due_timers(now=NOW + 10, limit=2)) == 2
    assert len(await store.fire_due_timers(now=NOW + 10, limit=2)) == 1
    assert len(await store.fire_due_timers(now=NOW + 10, limit=2)) == 0
    for tenant, cmds in [(T1, [1, 2]), (T2, [1])]:
        events = await history(store, tenant=tenant)
        assert [e.cmd for e in events if isinstance(e, TimerFired)] == cmds


# ---- introspection --------------------------------------------------------------------------


async def test_pending_work_is_scoped_to_the_execution(store: Store) -> None:
    await started_with(store, act(1), StartTimer(2, 1.0, NOW + 1))
    await started_with(store, act(1), wf="wf-2")
    await create(store, tenant=T2)
    actions, timers = await store.pending_work(T1, "wf-1")
    assert ([a.cmd for a in actions], [t.cmd for t in timers]) == ([1], [2])
    assert [a.workflow_id for a in (await store.pending_work(T1, "wf-2"))[0]] == ["wf-2"]
    assert await store.pending_work(T2, "wf-1") == ([], [])
    assert await store.pending_work(T1, "nope") == ([], [])


async def test_next_timer_reads_the_timers_alone(store: Store) -> None:
    assert await store.next_timer(now=NOW) is None
    await create(store, now=NOW)
    assert await store.next_timer(now=NOW) is None  # a runnable task is the outbox's
    task = await claim_one(store, now=NOW)
    assert await commit(store, task, act(1), StartTimer(2, 100.0, NOW + 100), visible_at=NOW + 50)
    assert await store.next_timer(now=NOW) == NOW + 100  # not the action's NOW + 50
    assert len(await store.fire_due_timers(now=NOW + 100, limit=10)) == 1
    assert await store.next_timer(now=NOW + 100) is None


async def test_next_wakeup_tracks_timers_leases_and_delays(store: Store) -> None:
    assert await store.next_wakeup(now=NOW) is None
    await create(store, now=NOW)
    assert await store.next_wakeup(now=NOW) == NOW  # a runnable workflow task
    task = await claim_one(store, now=NOW)
    assert await store.next_wakeup(now=NOW) == NOW + LEASE  # its lease expiry
    assert await commit(store, task, act(1), StartTimer(2, 100.0, NOW + 100), visible_at=NOW + 50)
    assert await store.next_wakeup(now=NOW) == NOW + 50  # the action becomes visible
    await claim_actions(store, now=NOW + 50, lease=80.0)
    assert await store.next_wakeup(now=NOW + 50) == NOW + 100  # the timer
    assert len(await store.fire_due_timers(now=NOW + 100, limit=10)) == 1
    assert await store.next_wakeup(now=NOW + 100) == NOW + 100  # the new workflow task
