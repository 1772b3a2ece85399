"""Conformance of the dispatch side of the store: hint claims and the outbox.

``claim_refs`` turns hints (``TaskRef``) into leases, skipping stale ones; ``dispatch_due``
announces claimable tasks whose hint may have been lost. Every store must pass every test.
"""

from __future__ import annotations

import asyncio

from durable._history import CompleteWorkflow, StartTimer
from durable._stores import (
    ActionTask, ExecutionUpdate, Store, TaskRef, WorkflowTask, action_ref, workflow_ref,
)

from .test_store import (
    LEASE, NOW, T1, T2, act, claim, claim_actions, claim_one, commit, completion, create,
    received, started_with,
)

HOSTED_WORKFLOWS = ("Flow",)
HOSTED_ACTIONS = ("act",)


async def claim_refs(store: Store, *refs: TaskRef, owner: str = "w1", now: float = NOW,
                     workflows: tuple[str, ...] = HOSTED_WORKFLOWS,
                     actions: tuple[str, ...] = HOSTED_ACTIONS,
                     ) -> tuple[list[WorkflowTask], list[ActionTask]]:
    return await store.claim_refs(list(refs), owner, workflows=workflows, actions=actions,
                                  lease=LEASE, now=now)


def wref(wf: str = "wf-1", tenant: str = T1, name: str = "") -> TaskRef:
    return workflow_ref(tenant, wf, name)


def aref(cmd: int, name: str = "act", wf: str = "wf-1", tenant: str = T1) -> TaskRef:
    return TaskRef("a", tenant, wf, name, f"run-{wf}", cmd)


def keys(refs: list[TaskRef]) -> set[tuple[str, str, str, str, int]]:
    return {(r.kind, r.tenant, r.workflow_id, r.run_id, r.cmd) for r in refs}


# ---- claim_refs -----------------------------------------------------------------------------


async def test_claim_refs_claims_named_due_hosted_tasks(store: Store) -> None:
    await started_with(store, act(1), act(2), act(3, "other"))
    await store.append_input(T1, "wf-1", received("x"), now=NOW)
    await create(store, "wf-2", workflow="Other")
    workflows, actions = await claim_refs(store, wref(), wref("wf-2"), aref(1), aref(3, "other"))
    assert workflows == [WorkflowTask(T1, "wf-1", "Flow", 1)]
    assert [(a.cmd, a.attempt, a.args, a.kwargs) for a in actions] == [(1, 1, [1], {"k": 1})]
    assert actions[0] == (await store.pending_work(T1, "wf-1"))[0][0]
    # the claims are real leases: nobody else gets them while they hold
    assert await claim(store, "w2", now=NOW + 1) == []
    assert [a.cmd for a in await claim_actions(store, "a2", now=NOW + 1)] == [2]
    assert await claim(store, "w2", now=NOW + 1, workflows=("Other",)) != []


async def test_claim_refs_may_bring_the_history_after_the_seq_the_caller_holds(
        store: Store) -> None:
    await started_with(store, act(1))  # seq 1-3: started, task completed, scheduled
    await store.append_input(T1, "wf-1", received("x"), now=NOW)  # seq 4
    await create(store, "wf-2")
    held = {"wf-1": 3, "wf-2": 0}
    workflows, _ = await store.claim_refs(
        [wref(), wref("wf-2"), wref("nope")], "w1", workflows=HOSTED_WORKFLOWS, actions=(),
        lease=LEASE, now=NOW, history_after=lambda tenant, wf: held.get(wf, 0))
    assert sorted(w.workflow_id for w in workflows) == ["wf-1", "wf-2"]
    for task in workflows:  # a store need not bring it, but what it brings is exact
        if task.history is not None:
            assert task.after_seq == held[task.workflow_id]
            full = await store.read_history(T1, task.workflow_id)
            assert task.history == full[task.after_seq:]
    without, _ = await claim_refs(store, wref(), now=NOW + 2 * LEASE)
    assert [w.history for w in without] == [None]


async def test_claim_refs_takes_only_due_tasks(store: Store) -> None:
    await started_with(store, act(1), visible_at=NOW + 5)
    await create(store, "wf-2", now=NOW + 5)
    assert await claim_refs(store, aref(1), wref("wf-2")) == ([], [])
    workflows, actions = await claim_refs(store, aref(1), wref("wf-2"), now=NOW + 5)
    assert [w.workflow_id for w in workflows] == ["wf-2"]
    assert [a.cmd for a in actions] == [1]


async def test_claim_refs_skips_stale_hints(store: Store) -> None:
    await started_with(store, act(1), act(2), act(3))
    assert await claim_refs(store, wref()) == ([], [])  # its workflow task is done
    await create(store, "wf-2")
    [done] = await claim_actions(store, "a1", limit=1)
    assert await store.complete_action_task(done, completion(done), now=NOW)  # wf-1 runnable
    [leased] = await claim_actions(store, "a2", limit=1)
    assert len(await claim(store, "w2")) == 2  # wf-1 and wf-2
    stale = [wref("wf-1"), wref("wf-2"), aref(leased.cmd), aref(done.cmd),  # leased, finished
             wref("nope"), wref(tenant=T2), aref(99), aref(3, wf="nope"),   # unknown
             aref(3, tenant=T2), TaskRef("a", T1, "wf-1", "act", "other-run", 3)]
    assert await claim_refs(store, *stale) == ([], [])
    assert await claim_refs(store, aref(3), actions=("elsewhere",)) == ([], [])
    assert [a.cmd for a in (await claim_refs(store, aref(3)))[1]] == [3]


async def test_claim_refs_skips_finished_executions(store: Store) -> None:
    await started_with(store, act(1))
    await store.append_input(T1, "wf-1", received("x"), now=NOW)
    done = ExecutionUpdate("completed", None, {}, result=None)
    assert await commit(store, await claim_one(store), CompleteWorkflow(None), update=done)
    assert await claim_refs(store, wref(), aref(1), now=NOW + 100) == ([], [])


async def test_claim_refs_claims_a_duplicated_hint_once(store: Store) -> None:
    await started_with(store, act(1))
    await create(store, "wf-2")
    workflows, actions = await claim_refs(store, wref("wf-2"), aref(1), wref("wf-2"), aref(1))
    assert (len(workflows), len(actions)) == (1, 1)


async def test_claim_refs_takes_over_expired_leases_counting_an_action_attempt(
        store: Store) -> None:
    await started_with(store, act(1))
    await create(store, "wf-2")
    [first] = await claim_actions(store, "a1")
    assert (await claim_one(store, "w1")).workflow_id == "wf-2"
    assert await claim_refs(store, aref(1), wref("wf-2"), owner="w2", now=NOW + LEASE - 1) == (
        [], [])
    workflows, [second] = await claim_refs(store, aref(1), wref("wf-2"), owner="w2",
                                           now=NOW + LEASE)
    assert workflows == [WorkflowTask(T1, "wf-2", "Flow", 2)]
    assert (first.attempt, second.attempt) == (1, 2)
    assert second.idempotency_key == first.idempotency_key
    assert not await store.extend_action_lease(first, "a1", lease=LEASE, now=NOW + LEASE)
    assert await store.extend_action_lease(second, "w2", lease=LEASE, now=NOW + LEASE)


async def test_claim_refs_for_a_retried_action_when_due(store: Store) -> None:
    await started_with(store, act(1))
    [task] = await claim_actions(store, "a1")
    await store.retry_action_task(task, "a1", visible_at=NOW + 10, error="boom", now=NOW + 1)
    assert await claim_refs(store, action_ref(task), now=NOW + 9) == ([], [])
    [], [again] = await claim_refs(store, action_ref(task), now=NOW + 10)
    assert (again.attempt, again.last_error) == (2, "boom")


# ---- dispatch_due ---------------------------------------------------------------------------


async def dispatch(store: Store, now: float, *, older_than: float = 10.0,
                   limit: int = 100) -> list[TaskRef]:
    return await store.dispatch_due(now=now, older_than=older_than, limit=limit)


async def test_dispatch_due_announces_each_task_once_per_window(store: Store) -> None:
    await started_with(store, act(1))  # the action task was dispatched at NOW by its creator
    await create(store, "wf-2", tenant=T2)
    assert await dispatch(store, NOW + 9) == []
    due = await dispatch(store, NOW + 10)
    assert keys(due) == {("a", T1, "wf-1", "run-wf-1", 1), ("w", T2, "wf-2", "", -1)}
    assert [r for r in due if r.kind == "a"] == [aref(1)]
    assert await dispatch(store, NOW + 10) == []
    assert await dispatch(store, NOW + 19) == []
    assert keys(await dispatch(store, NOW + 20)) == keys(due)


async def test_dispatch_due_announces_a_task_that_waits_long_less_and_less_often(
        store: Store) -> None:
    # Announced again once unclaimed for as long as it had waited (at least older_than, at
    # most REANNOUNCE_AT_MOST): a backlog is not announced every older_than seconds.
    await started_with(store, act(1))
    await create(store, "wf-2", tenant=T2)
    both = {("a", T1, "wf-1", "run-wf-1", 1), ("w", T2, "wf-2", "", -1)}
    assert keys(await dispatch(store, NOW + 40)) == both  # had waited 40 s: next at 80
    assert await dispatch(store, NOW + 50) == []
    assert await dispatch(store, NOW + 79) == []
    assert keys(await dispatch(store, NOW + 80)) == both  # had waited 80 s: next 60 s later
    assert await dispatch(store, NOW + 139) == []
    assert keys(await dispatch(store, NOW + 140)) == both
    assert keys(await dispatch(store, NOW + 200)) == both


async def test_dispatch_due_counts_appends_as_dispatched(store: Store) -> None:
    await started_with(store)
    await store.append_input(T1, "wf-1", received("x"), now=NOW + 50)
    assert await dispatch(store, NOW + 55) == []
    assert await dispatch(store, NOW + 60) == [wref(name="Flow")]  # the outbox names its route


async def test_dispatch_due_skips_live_leases_and_takes_expired_ones(store: Store) -> None:
    await started_with(store, act(1))
    await create(store, "wf-2")
    await claim_actions(store, "a1")
    await claim_one(store, "w1")
    assert await dispatch(store, NOW + LEASE - 1, older_than=0.0) == []
    # the workers died: their leases expired, so the tasks are claimable and announced again
    assert keys(await dispatch(store, NOW + LEASE, older_than=1.0)) == {
        ("a", T1, "wf-1", "run-wf-1", 1), ("w", T1, "wf-2", "", -1)}


async def test_dispatch_due_announces_a_retry_once_it_is_due(store: Store) -> None:
    await started_with(store, act(1))
    [task] = await claim_actions(store, "a1")
    await store.retry_action_task(task, "a1", visible_at=NOW + 10, error="boom", now=NOW + 1)
    assert await dispatch(store, NOW + 9, older_than=1000.0) == []
    assert await dispatch(store, NOW + 10, older_than=1000.0) == [action_ref(task)]
    assert await dispatch(store, NOW + 11, older_than=1000.0) == []


async def test_dispatch_due_announces_a_release_once_it_is_due(store: Store) -> None:
    await create(store)
    task = await claim_one(store, "w1")
    await store.release_workflow_task(task, "w1", delay=5.0, error=None, now=NOW + 1)
    assert await dispatch(store, NOW + 5, older_than=1000.0) == []
    assert await dispatch(store, NOW + 6, older_than=1000.0) == [wref(name="Flow")]
    assert await dispatch(store, NOW + 7, older_than=1000.0) == []


async def test_dispatch_due_skips_finished_work(store: Store) -> None:
    await started_with(store, act(1), StartTimer(2, 5.0, NOW + 5))
    [task] = await claim_actions(store, "a1")
    assert await store.complete_action_task(task, completion(task), now=NOW + 1)
    done = ExecutionUpdate("completed", None, {})
    assert await commit(store, await claim_one(store, now=NOW + 1), CompleteWorkflow(None),
                        update=done, now=NOW + 1)
    assert await dispatch(store, NOW + 1000) == []


async def test_dispatch_due_respects_limit(store: Store) -> None:
    await started_with(store, act(1), act(2))
    for wf in ["wf-2", "wf-3", "wf-4"]:
        await create(store, wf)
    batches = [await dispatch(store, NOW + 100, limit=2) for _ in range(4)]
    assert [len(b) for b in batches] == [2, 2, 1, 0]
    assert len(keys([r for b in batches for r in b])) == 5
    assert await dispatch(store, NOW + 100, limit=0) == []


async def test_concurrent_dispatch_due_callers_get_disjoint_sets(store: Store,
                                                                 other_store: Store) -> None:
    await started_with(store, act(1), act(2), act(3), wf="wf-a")
    for i in range(12):
        await create(store, f"wf-{i}")
    first, second = await asyncio.gather(dispatch(store, NOW + 100, limit=10),
                                         dispatch(other_store, NOW + 100, limit=10))
    rest = await dispatch(store, NOW + 100, limit=100)
    assert len(keys(first)) == len(first) and len(keys(second)) == len(second)
    assert not keys(first) & keys(second)
    assert not (keys(first) | keys(second)) & keys(rest)
    assert len(first) + len(second) + len(rest) == 15
