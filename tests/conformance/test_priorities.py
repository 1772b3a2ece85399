"""Priorities and fairness keys on every store: claims take due tasks by priority (higher
first), then round-robin across (tenant, fairness key), then by due time; every path that
makes a task runnable carries its execution's priority and fairness key."""

from __future__ import annotations

from msgspec.structs import replace

from durable._history import (
    ChildInitiated, ChildStarted, Command, EventReceived, ScheduleAction, StartChild,
    TaskCompleted, TimerFired, WorkflowStarted,
)
from durable._limits import Limit
from durable._options import CallOptions
from durable._stores import (
    ActionTask, ExecutionUpdate, Start, Store, TimerRecord, WorkflowCommit, WorkflowTask,
)

from .test_store import LEASE, NOW, RUNNING, T1, T2, claim, completion, started

FLOW = ("Flow",)


async def create(store: Store, wf: str, *, tenant: str = T1, priority: int = 0,
                 fairness_key: str | None = None, now: float = NOW) -> None:
    s = replace(started(wf, tenant=tenant), priority=priority, fairness_key=fairness_key)
    _, created = await store.create_execution(s, now=now)
    assert created


async def claim_ids(store: Store, *, limit: int, now: float = NOW + 1) -> list[str]:
    return [t.workflow_id for t in await claim(store, limit=limit, now=now)]


async def commit(store: Store, task: WorkflowTask, *commands: Command, now: float = NOW,
                 starts: tuple[Start, ...] = (), timers: tuple[float, ...] = (),
                 update: ExecutionUpdate = RUNNING) -> None:
    """Commit ``commands`` as a worker does: action tasks get the call's priority (its
    options), else the execution's, and the execution's fairness key."""
    record = await store.get_execution(task.tenant, task.workflow_id)
    assert record is not None
    seq = record.last_seq + 1
    events = [TaskCompleted(seq, now), *(c.to_event(seq + 1 + i, now)
                                         for i, c in enumerate(commands))]
    run = (task.tenant, task.workflow_id, record.run_id)
    actions = [ActionTask(*run, c.cmd, c.name, c.args, c.kwargs, visible_at=now,
                          options=c.options, fairness_key=record.fairness_key,
                          priority=record.priority if c.options is None or c.options.priority
                          is None else c.options.priority)
               for c in commands if isinstance(c, ScheduleAction)]
    timer_records = [TimerRecord(*run, 100 + i, at) for i, at in enumerate(timers)]
    assert await store.commit_workflow_task(task, WorkflowCommit(
        "w1", seq, events, update, now, actions=actions, timers=timer_records, starts=starts))


async def claim_all(store: Store, *, now: float = NOW) -> dict[str, WorkflowTask]:
    """Every due workflow task, by workflow id."""
    return {t.workflow_id: t for t in await claim(store, limit=1000, now=now)}


# ---- priority -------------------------------------------------------------------------------


async def test_a_higher_priority_workflow_task_is_claimed_first(store: Store) -> None:
    for i in range(5):
        await create(store, f"old-{i}", now=NOW - 50 + i)  # older, priority 0
    await create(store, "urgent", priority=10)
    await create(store, "low", priority=-3, now=NOW - 100)  # the oldest of all
    await create(store, "soon", priority=1)
    assert await claim_ids(store, limit=2) == ["urgent", "soon"]
    rest = await claim_ids(store, limit=10)
    assert rest[-1] == "low" and rest[:5] == [f"old-{i}" for i in range(5)]


async def test_a_higher_priority_action_task_is_claimed_first(store: Store) -> None:
    await create(store, "plain")
    await create(store, "high", priority=5)
    tasks = await claim_all(store)
    for wf in ("plain", "high"):
        await commit(store, tasks[wf], *(ScheduleAction(c, "act", [c]) for c in (1, 2)))
    claimed = await store.claim_action_tasks(["act"], "a1", lease=LEASE, now=NOW + 1, limit=2)
    assert [(t.workflow_id, t.priority) for t in claimed] == [("high", 5), ("high", 5)]


async def test_a_call_priority_overrides_the_workflows(store: Store) -> None:
    await create(store, "wf", priority=5, fairness_key="k")
    task = (await claim_all(store))["wf"]
    await commit(store, task, ScheduleAction(1, "act", [1]),
                 ScheduleAction(2, "act", [2], options=CallOptions(priority=9)),
                 ScheduleAction(3, "act", [3], options=CallOptions(priority=-1)))
    claimed = await store.claim_action_tasks(["act"], "a1", lease=LEASE, now=NOW + 1, limit=3)
    assert [(t.cmd, t.priority, t.fairness_key) for t in claimed] == [
        (2, 9, "k"), (1, 5, "k"), (3, -1, "k")]
    assert claimed[0].options == CallOptions(priority=9)


async def test_a_retried_action_keeps_its_priority(store: Store) -> None:
    await create(store, "wf", priority=3)
    await create(store, "other")
    tasks = await claim_all(store)
    for wf in ("wf", "other"):
        await commit(store, tasks[wf], ScheduleAction(1, "act", [1]))
    [first] = await store.claim_action_tasks(["act"], "a1", lease=LEASE, now=NOW + 1, limit=1)
    assert first.workflow_id == "wf"
    await store.retry_action_task(first, "a1", visible_at=NOW + 2, error="boom", now=NOW + 1)
    later = await store.claim_action_tasks(["act"], "a1", lease=LEASE, now=NOW + 3, limit=2)
    assert [(t.workflow_id, t.priority) for t in later] == [("wf", 3), ("other", 0)]


async def test_every_input_makes_a_task_with_the_executions_priority(store: Store) -> None:
    await create(store, "high", priority=7, fairness_key="k")
    await commit(store, (await claim_all(store))["high"], ScheduleAction(1, "act", [1]),
                 timers=(NOW + 5,))
    for i in range(3):
        await create(store, f"old-{i}", now=NOW - 10 + i)
    [action] = await store.claim_action_tasks(["act"], "a1", lease=LEASE, now=NOW + 1, limit=1)
    assert await store.complete_action_task(action, completion(action), now=NOW + 1)
    [task] = await claim(store, limit=1, now=NOW + 2)
    assert task.workflow_id == "high"  # made runnable by an action's outcome
    await commit(store, task, now=NOW + 2)
    assert await store.append_input(T1, "high", EventReceived(0, 0.0, "Go", None), now=NOW + 3)
    [task] = await claim(store, limit=1, now=NOW + 3)
    assert task.workflow_id == "high"  # by a signal
    await commit(store, task, now=NOW + 3)
    assert await store.fire_due_timers(now=NOW + 6, limit=10)
    assert await claim_ids(store, limit=1, now=NOW + 6) == ["high"]  # by a timer
    record = await store.get_execution(T1, "high")
    assert record is not None and (record.priority, record.fairness_key) == (7, "k")


async def test_a_released_task_keeps_its_priority(store: Store) -> None:
    await create(store, "high", priority=2)
    await create(store, "old", now=NOW - 10)
    task = (await claim_all(store))["high"]
    await store.release_workflow_task(task, "w1", delay=0.0, error=None, now=NOW)
    assert await claim_ids(store, limit=1) == ["high"]


async def test_a_limited_claim_takes_priority_then_turns(store: Store) -> None:
    await create(store, "big", fairness_key="big")
    await create(store, "small", fairness_key="small")
    await create(store, "urgent", priority=4)
    tasks = await claim_all(store)
    await commit(store, tasks["big"], *(ScheduleAction(c, "act", [c]) for c in range(1, 11)))
    await commit(store, tasks["small"], ScheduleAction(1, "act", [1]), now=NOW + 1)
    await commit(store, tasks["urgent"], ScheduleAction(1, "act", [1]), now=NOW + 2)
    claimed = await store.claim_limited("act", Limit(max_concurrent=3), "a1", lease=LEASE,
                                        now=NOW + 3, limit_count=10)
    assert [t.workflow_id for t in claimed][0] == "urgent"
    assert sorted(t.workflow_id for t in claimed[1:]) == ["big", "small"]


# ---- children and continue-as-new -----------------------------------------------------------


def child(wf: str, *, tenant: str = T1, priority: int = 0, key: str | None = None,
          run: str = "") -> Start:
    s = replace(started(wf, tenant=tenant, run=run), priority=priority, fairness_key=key)
    return Start(s, on_started=ChildStarted(0, 0.0, 1))


async def test_a_child_starts_with_the_priority_and_key_it_was_given(store: Store) -> None:
    await create(store, "parent", priority=4, fairness_key="p")
    task = (await claim_all(store))["parent"]
    initiated = StartChild(1, "Flow", "1", "kid", "run-kid", [1], priority=6, fairness_key="c")
    await commit(store, task, initiated, starts=(
        child("kid", priority=6, key="c"), child("kid-plain")))
    for i in range(3):
        await create(store, f"old-{i}", now=NOW - 10 + i)
    kid = await store.get_execution(T1, "kid")
    plain = await store.get_execution(T1, "kid-plain")
    assert kid is not None and (kid.priority, kid.fairness_key) == (6, "c")
    assert plain is not None and (plain.priority, plain.fairness_key) == (0, None)
    assert await claim_ids(store, limit=2, now=NOW + 1) == ["kid", "parent"]
    [event] = [e for e in await store.read_history(T1, "parent")
               if isinstance(e, ChildInitiated)]
    assert (event.priority, event.fairness_key) == (6, "c")


async def test_continue_as_new_keeps_priority_and_fairness_key(store: Store) -> None:
    await create(store, "wf", priority=8, fairness_key="k")
    task = (await claim_all(store))["wf"]
    record = await store.get_execution(T1, "wf")
    assert record is not None
    nxt = replace(started("wf", run="run-2"), continued_from=record.run_id, priority=8,
                  fairness_key="k")
    await commit(store, task, starts=(Start(nxt),),
                 update=ExecutionUpdate("completed", None, {}))
    await create(store, "old", now=NOW - 10)
    record = await store.get_execution(T1, "wf")
    assert record is not None and record.run_id == "run-2"
    assert (record.priority, record.fairness_key) == (8, "k")
    assert await claim_ids(store, limit=1, now=NOW + 1) == ["wf"]
    [first] = await store.read_history(T1, "wf")
    assert isinstance(first, WorkflowStarted) and first.priority == 8


# ---- fairness keys --------------------------------------------------------------------------


async def test_fairness_keys_take_turns_within_a_tenant(store: Store) -> None:
    for i in range(50):  # one key's backlog, all older
        await create(store, f"big-{i}", fairness_key="big", now=NOW - 100 + i)
    await create(store, "small-1", fairness_key="small")
    await create(store, "none-1")  # no key: a partition of its own
    claimed = await claim_ids(store, limit=3)
    assert sorted(claimed) == ["big-0", "none-1", "small-1"]
    assert len(await claim_ids(store, limit=100)) == 49


async def test_a_backlog_holds_another_keys_task_back_by_at_most_one_round(store: Store) -> None:
    for i in range(50):
        await create(store, f"big-{i}", fairness_key="big", now=NOW - 100 + i)
    for i in range(10):
        await create(store, f"mid-{i}", fairness_key="mid", now=NOW - 90 + i)
    await create(store, "late", fairness_key="late", now=NOW)
    order = await claim_ids(store, limit=61)
    # Turn 1 holds each key's oldest (the late key's only task among them), by due time; then
    # the turns of the keys that have more.
    expected = ["big-0", "mid-0", "late"]
    expected += [wf for i in range(1, 10) for wf in (f"big-{i}", f"mid-{i}")]
    expected += [f"big-{i}" for i in range(10, 50)]
    assert order == expected


async def test_fairness_keys_of_two_tenants_are_apart(store: Store) -> None:
    for tenant in (T1, T2):
        for i in range(5):
            await create(store, f"{tenant}-x-{i}", tenant=tenant, fairness_key="x",
                         now=NOW - 50 + i)
    await create(store, "t2-y", tenant=T2, fairness_key="y")
    claimed = await claim(store, limit=3, now=NOW + 1)
    assert sorted((t.tenant, t.workflow_id) for t in claimed) == sorted([
        (T1, f"{T1}-x-0"), (T2, f"{T2}-x-0"), (T2, "t2-y")])


async def test_action_claims_take_turns_across_fairness_keys(store: Store) -> None:
    await create(store, "big", fairness_key="big")
    await create(store, "small", fairness_key="small")
    tasks = await claim_all(store)
    await commit(store, tasks["big"], *(ScheduleAction(c, "act", [c]) for c in range(1, 21)))
    await commit(store, tasks["small"], ScheduleAction(1, "act", [1]), now=NOW + 1)
    claimed = await store.claim_action_tasks(["act"], "a1", lease=LEASE, now=NOW + 2, limit=2)
    assert sorted(t.workflow_id for t in claimed) == ["big", "small"]


async def test_priority_comes_before_fairness(store: Store) -> None:
    for i in range(5):
        await create(store, f"big-{i}", fairness_key="big", priority=1, now=NOW - 50 + i)
    await create(store, "small", fairness_key="small")
    assert await claim_ids(store, limit=5) == [f"big-{i}" for i in range(5)]
    assert await claim_ids(store, limit=5) == ["small"]


async def test_a_timer_fires_into_a_task_with_the_key(store: Store) -> None:
    await create(store, "k1", fairness_key="k")
    await commit(store, (await claim_all(store))["k1"], timers=(NOW + 5,))
    for i in range(5):
        await create(store, f"j-{i}", fairness_key="j", now=NOW - 10 + i)
    assert await store.fire_due_timers(now=NOW + 6, limit=10)
    assert "k1" in await claim_ids(store, limit=2, now=NOW + 6)
    history = await store.read_history(T1, "k1")
    assert any(isinstance(e, TimerFired) for e in history)


# ---- the outbox -----------------------------------------------------------------------------


async def test_the_outbox_announces_higher_priorities_first(store: Store) -> None:
    for i, priority in enumerate([0, 5, -1, 5, 2]):
        await create(store, f"wf-{i}", priority=priority, now=NOW + i)
    refs = await store.dispatch_due(now=NOW + 10, older_than=1.0, limit=10)
    ids = [r.workflow_id for r in refs]
    assert set(ids[:2]) == {"wf-1", "wf-3"} and ids[2:] == ["wf-4", "wf-0", "wf-2"]
