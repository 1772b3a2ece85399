"""Schedules in every store: the rows (compare-and-set, leases, tenants) and the scheduler
on top of them (each due time started exactly once, however many schedulers race or crash).

Time is passed explicitly (``now=``); workflow runs are created by the scheduler in the
store and inspected there, no worker runs them.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from msgspec.structs import replace

from durable import Overlap
from durable._history import CancelRequested
from durable._schedules._plan import next_check, plan, run_workflow_id
from durable._schedules._scheduler import Scheduler
from durable._schedules._spec import make_spec
from durable._stores import Store
from durable._stores._schedule_records import PendingRun, ScheduleRecord, ScheduleRun

T1, T2 = "tenant-a", "tenant-b"
T0 = 1_800_000_000.0  # a multiple of 60
LEASE = 10.0


def schedule(sid: str = "s1", *, tenant: str = T1, every: float = 60.0,
             overlap: Overlap = Overlap.ALLOW_ALL, window: float = 86400.0,
             **kw: Any) -> ScheduleRecord:
    spec = make_spec(sid, cron=None, every=every, offset=0.0, tz="UTC", now=T0 - 1)
    return ScheduleRecord(tenant, sid, "Flow", "1", [1], {}, spec, overlap.value, window,
                          T0 - 1, T0 - 1, next_due=T0, **kw)


async def put(store: Store, record: ScheduleRecord) -> ScheduleRecord:
    stored, created = await store.create_schedule(record, next_check=next_check(record, T0))
    assert created
    return stored


async def run_ids(store: Store, tenant: str = T1) -> list[str]:
    return sorted(r.workflow_id for r in await store.list_executions(tenant, limit=1000))


# ---- rows -----------------------------------------------------------------------------------


async def test_create_is_idempotent_by_tenant_and_id(store: Store) -> None:
    first = await put(store, schedule())
    again, created = await store.create_schedule(replace(first, note="other"), next_check=T0)
    assert not created and again == first
    assert await store.get_schedule(T1, "s1") == first
    assert await store.get_schedule(T2, "s1") is None
    await put(store, schedule(tenant=T2))
    await put(store, schedule("s0"))
    assert [r.schedule_id for r in await store.list_schedules(T1)] == ["s0", "s1"]
    assert [(r.tenant, r.schedule_id) for r in await store.list_schedules()] == [
        (T1, "s0"), (T1, "s1"), (T2, "s1")]
    assert len(await store.list_schedules(limit=1)) == 1


async def test_update_is_a_compare_and_set_on_the_revision(store: Store, other_store: Store) -> None:
    first = await put(store, schedule())
    paused = replace(first, revision=2, paused=True)
    assert await store.update_schedule(paused, next_check=None)
    assert not await other_store.update_schedule(replace(first, revision=2, note="lost"),
                                                 next_check=T0)
    assert await other_store.get_schedule(T1, "s1") == paused
    assert not await store.update_schedule(replace(schedule("nope"), revision=2), next_check=T0)
    assert await store.next_schedule_check() is None  # paused: nothing to check


async def test_claims_lease_due_schedules_to_one_owner_at_a_time(store: Store,
                                                                 other_store: Store) -> None:
    await put(store, schedule("s1"))
    await put(store, schedule("s2"))
    await put(store, replace(schedule("later"), next_due=T0 + 600))
    assert await store.claim_schedules("a", lease=LEASE, now=T0 - 1, limit=10) == []
    got = await store.claim_schedules("a", lease=LEASE, now=T0, limit=1)
    rest = await other_store.claim_schedules("b", lease=LEASE, now=T0, limit=10)
    assert len(got) == len(rest) == 1 and got[0].schedule_id != rest[0].schedule_id
    assert await store.claim_schedules("c", lease=LEASE, now=T0 + 1, limit=10) == []
    assert await store.next_schedule_check() == T0 + LEASE
    # the owner's update releases the lease; a stranger's is refused
    done = replace(got[0], revision=2, next_due=T0 + 60)
    assert not await store.update_schedule(done, next_check=T0 + 60, owner="b")
    assert await store.update_schedule(done, next_check=T0 + 60, owner="a")
    # an expired lease (its scheduler died) is claimed again
    again = await store.claim_schedules("c", lease=LEASE, now=T0 + LEASE, limit=10)
    assert [r.schedule_id for r in again] == [rest[0].schedule_id]


async def test_claiming_one_schedule_by_key(store: Store) -> None:
    await put(store, schedule("s1"))
    await put(store, schedule("s2"))
    [only] = await store.claim_schedules("a", lease=LEASE, now=T0, limit=5, key=(T1, "s2"))
    assert only.schedule_id == "s2"
    assert await store.claim_schedules("b", lease=LEASE, now=T0, limit=5, key=(T1, "s2")) == []
    assert await store.claim_schedules("b", lease=LEASE, now=T0, limit=5, key=(T2, "s1")) == []


async def test_delete(store: Store) -> None:
    await put(store, schedule())
    assert await store.delete_schedule(T1, "s1")
    assert not await store.delete_schedule(T1, "s1")
    assert await store.get_schedule(T1, "s1") is None
    assert await store.claim_schedules("a", lease=LEASE, now=T0, limit=5) == []


# ---- the scheduler on each store ------------------------------------------------------------


async def test_each_due_time_starts_once_with_an_id_derived_from_it(store: Store) -> None:
    await put(store, schedule())
    scheduler = Scheduler(store, owner="one")
    refs = await scheduler.run_due(T0 + 150)
    expected = [run_workflow_id("s1", PendingRun(T0 + k * 60)) for k in range(3)]
    assert sorted(r.workflow_id for r in refs) == expected
    assert await scheduler.run_due(T0 + 150) == []  # nothing new is due
    record = await store.get_schedule(T1, "s1")
    assert record is not None and record.runs == 3 and record.next_due == T0 + 180
    assert await run_ids(store) == expected
    history = await store.read_history(T1, expected[0])
    assert getattr(history[0], "args") == [1] and getattr(history[0], "workflow") == "Flow"


async def test_racing_schedulers_never_start_a_run_twice(store: Store, other_store: Store) -> None:
    for n in range(5):
        await put(store, schedule(f"s{n}", every=1.0))
    created = Counter[str]()
    for s in {id(store): store, id(other_store): other_store}.values():
        original = s.create_execution

        async def counting(started: Any, *, now: float, _original: Any = original) -> Any:
            record, new = await _original(started, now=now)
            created[started.workflow_id] += new
            return record, new

        s.create_execution = counting  # type: ignore[method-assign]
    schedulers = [Scheduler(store, owner="a"), Scheduler(other_store, owner="b"),
                  Scheduler(store, owner="c")]
    for step in range(1, 21):  # 20 seconds of due times, every scheduler at every second
        await asyncio.gather(*(s.run_due(T0 + step) for s in schedulers))
    assert set(created.values()) == {1} and len(created) == 5 * 21
    for n in range(5):
        record = await other_store.get_schedule(T1, f"s{n}")
        assert record is not None and record.runs == 21 and record.next_due == T0 + 21


async def test_a_scheduler_that_died_mid_pass_is_replaced_without_duplicates(store: Store) -> None:
    await put(store, schedule())
    [claimed] = await store.claim_schedules("dead", lease=LEASE, now=T0 + 60, limit=5)
    dead = Scheduler(store, owner="dead")
    decided = plan(claimed, T0 + 60)
    runs = [ScheduleRun(r.due, run_workflow_id("s1", r), T0, r.manual) for r in decided.starts]
    intent = await dead._commit(claimed, decided, runs, set(), T0 + 60, release=False)
    assert intent is not None and len(intent.starting) == 2
    await dead._carry_out(replace(intent, starting=intent.starting[:1]))  # then it died
    assert await Scheduler(store, owner="next").run_due(T0 + 61) == []  # still leased
    refs = await Scheduler(store, owner="next").run_due(T0 + 60 + LEASE)
    expected = [run_workflow_id("s1", PendingRun(T0 + k * 60)) for k in range(2)]
    assert sorted(r.workflow_id for r in refs) == expected  # the intent, carried out
    record = await store.get_schedule(T1, "s1")
    assert record is not None and record.runs == 2 and record.starting == []
    assert await run_ids(store) == expected
    assert await Scheduler(store, owner="next").run_due(T0 + 100) == []


async def test_skip_waits_for_the_running_run_to_end(store: Store) -> None:
    await put(store, schedule(overlap=Overlap.SKIP))
    scheduler = Scheduler(store, owner="one")
    [first] = await scheduler.run_due(T0)
    assert await scheduler.run_due(T0 + 60) == []  # the first still runs: skipped
    await _end(store, first.workflow_id)
    [second] = await scheduler.run_due(T0 + 120)
    assert second.workflow_id == run_workflow_id("s1", PendingRun(T0 + 120))
    record = await store.get_schedule(T1, "s1")
    assert record is not None and (record.runs, record.skipped) == (2, 1)
    assert record.running == [second.workflow_id]


async def test_buffer_one_starts_the_waiting_run_once_the_running_one_ended(store: Store) -> None:
    await put(store, schedule(overlap=Overlap.BUFFER_ONE))
    scheduler = Scheduler(store, owner="one")
    [first] = await scheduler.run_due(T0 + 130)  # T0 starts, T0+60 waits, T0+120 is skipped
    record = await store.get_schedule(T1, "s1")
    assert record is not None and len(record.buffered) == 1 and record.skipped == 1
    assert await store.next_schedule_check() == T0 + 131  # it keeps an eye on the run
    await _end(store, first.workflow_id)
    [buffered] = await scheduler.run_due(T0 + 131)
    assert buffered.workflow_id == run_workflow_id("s1", PendingRun(T0 + 60))


async def test_cancel_other_asks_the_running_run_to_stop(store: Store) -> None:
    await put(store, schedule(overlap=Overlap.CANCEL_OTHER))
    scheduler = Scheduler(store, owner="one")
    [first] = await scheduler.run_due(T0)
    refs = await scheduler.run_due(T0 + 60)
    assert {r.workflow_id for r in refs} == {first.workflow_id,
                                             run_workflow_id("s1", PendingRun(T0 + 60))}
    history = await store.read_history(T1, first.workflow_id)
    assert isinstance(history[-1], CancelRequested)


async def test_a_manual_trigger_is_processed_by_key(store: Store) -> None:
    record = await put(store, replace(schedule(paused=True), triggers=[PendingRun(T0 + 5, True)]))
    assert record.paused
    [ref] = await Scheduler(store, owner="client").run_one(T1, "s1", T0 + 5)
    assert ref.workflow_id == run_workflow_id("s1", PendingRun(T0 + 5, True))
    stored = await store.get_schedule(T1, "s1")
    assert stored is not None and stored.triggers == [] and stored.runs == 1


async def test_schedules_run_in_their_own_tenant(store: Store) -> None:
    await put(store, schedule(tenant=T2))
    await Scheduler(store, owner="one").run_due(T0)
    assert await run_ids(store, T1) == []
    assert await run_ids(store, T2) == [run_workflow_id("s1", PendingRun(T0))]


async def _end(store: Store, workflow_id: str) -> None:
    """Finish a run as a worker would (claim its task, commit a terminal update)."""
    from durable._history import TaskCompleted, WorkflowCompleted
    from durable._stores import ExecutionUpdate, WorkflowCommit

    [task] = [t for t in await store.claim_workflow_tasks(["Flow"], "w", lease=30, now=T0 + 1e6,
                                                          limit=100)
              if t.workflow_id == workflow_id]
    record = await store.get_execution(T1, workflow_id)
    assert record is not None
    seq = record.last_seq + 1
    assert await store.commit_workflow_task(task, WorkflowCommit(
        "w", seq, [TaskCompleted(seq, T0), WorkflowCompleted(seq + 1, T0, None)],
        ExecutionUpdate("completed", None, {}), T0))


async def test_next_wakeup_counts_schedules(store: Store) -> None:
    assert await store.next_wakeup(now=T0) is None
    await put(store, replace(schedule(), next_due=T0 + 600))
    assert await store.next_wakeup(now=T0) == T0 + 600  # pollers and time-skipping wake for it
    await put(store, replace(schedule("paused", paused=True), next_due=T0 + 1))
    assert await store.next_wakeup(now=T0) == T0 + 600
