"""A commit that first records the action outcome that made its workflow task due
(``Settled``), on every store: the worker that ran an action while holding the execution's
instance runs that task at once, and one transaction records the outcome and the task."""

from __future__ import annotations

from msgspec.structs import replace

from durable._history import ActionCompleted, TaskCompleted
from durable._stores import ActionTask, Settled, Store, WorkflowCommit, WorkflowTask

from .test_eager_actions import _commit_leased
from .test_store import (
    LEASE, NOW, RUNNING, T1, claim, claim_actions, completion, history, received, seqs,
)


def _settling(action: ActionTask, *, seq: int = 4, owner: str = "w1") -> WorkflowCommit:
    """The outcome of ``action`` at ``seq`` and the workflow task it made due, at ``seq + 1``."""
    now = NOW + 1
    event = replace(completion(action), seq=seq, time=now)
    return WorkflowCommit(owner, seq + 1, [TaskCompleted(seq + 1, now)], RUNNING, now,
                          lease_until=now + LEASE, settled=Settled(action, event))


def _task(action: ActionTask) -> WorkflowTask:
    return WorkflowTask(T1, "wf-1", "Flow", run_id=action.run_id)


async def test_a_settling_commit_records_the_outcome_then_its_own_events(store: Store) -> None:
    [action] = await _commit_leased(store, 1, leased=(1,))  # history 1-3, the action leased
    assert await store.commit_workflow_task(_task(action), _settling(action))
    events = await history(store)
    assert seqs(events) == [1, 2, 3, 4, 5]
    assert type(events[3]) is ActionCompleted and events[3].result == "ok"
    record = await store.get_execution(T1, "wf-1")
    assert record is not None and record.last_seq == 5
    assert await claim(store, now=NOW + 2) == []  # no workflow task is left behind
    assert await claim_actions(store, "other", now=NOW + 3 * LEASE) == []  # nor the action's
    # the outcome was recorded with the action's dedup key: a late completion is refused
    assert not await store.complete_action_task(action, completion(action), now=NOW + 2)
    assert seqs(await history(store)) == [1, 2, 3, 4, 5]


async def test_a_settling_commit_writes_nothing_while_an_input_waits(store: Store) -> None:
    [action] = await _commit_leased(store, 1, leased=(1,))
    assert await store.append_input(T1, "wf-1", received("go"), now=NOW + 0.5) == 4
    # even at the seq after the input: its workflow task must run the input first
    assert not await store.commit_workflow_task(_task(action), _settling(action, seq=5))
    assert seqs(await history(store)) == [1, 2, 3, 4]
    assert await store.extend_action_lease(action, "w1", lease=LEASE, now=NOW + 1)  # still held
    assert await store.complete_action_task(action, completion(action), now=NOW + 2)
    assert seqs(await history(store)) == [1, 2, 3, 4, 5]


async def test_a_settling_commit_needs_the_action_lease(store: Store) -> None:
    [action] = await _commit_leased(store, 1, leased=(1,))
    assert not await store.commit_workflow_task(_task(action), _settling(action, owner="w2"))
    [again] = await claim_actions(store, "w2", now=NOW + LEASE + 1)  # w1's lease lapsed
    assert not await store.commit_workflow_task(_task(action), _settling(action))
    assert seqs(await history(store)) == [1, 2, 3]
    assert await store.commit_workflow_task(_task(again), _settling(again, owner="w2"))
    assert seqs(await history(store)) == [1, 2, 3, 4, 5]


async def test_a_settling_commit_conflicts_on_the_outcome_seq(store: Store) -> None:
    [action] = await _commit_leased(store, 1, leased=(1,))
    assert not await store.commit_workflow_task(_task(action), _settling(action, seq=5))
    assert not await store.commit_workflow_task(_task(action), _settling(action, seq=3))
    assert seqs(await history(store)) == [1, 2, 3]
    assert await store.commit_workflow_task(_task(action), _settling(action))


async def test_a_settling_commit_whose_events_do_not_follow_the_outcome_writes_nothing(
        store: Store) -> None:
    [action] = await _commit_leased(store, 1, leased=(1,))
    settling = _settling(action)
    gap = replace(settling, expected_seq=6, events=[TaskCompleted(6, NOW + 1)])
    assert not await store.commit_workflow_task(_task(action), gap)
    assert seqs(await history(store)) == [1, 2, 3]
    assert await store.extend_action_lease(action, "w1", lease=LEASE, now=NOW + 1)  # still held
    assert await store.commit_workflow_task(_task(action), settling)
    assert seqs(await history(store)) == [1, 2, 3, 4, 5]
