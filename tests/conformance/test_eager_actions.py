"""Eager action dispatch on every store: a commit can create its new action tasks already
leased to the committing worker, which runs them without a hint or a claim."""

from __future__ import annotations

from durable._history import Event, TaskCompleted
from durable._stores import ActionTask, Start, Store, WorkflowCommit

from .test_store import (
    LEASE, NOW, RUNNING, T1, act, claim_actions, claim_one, completion, create, started,
)


async def _commit_leased(store: Store, *cmds: int, leased: tuple[int, ...],
                         starts: tuple[Start, ...] = ()) -> list[ActionTask]:
    await create(store)
    task = await claim_one(store)
    record = await store.get_execution(T1, "wf-1")
    assert record is not None
    events: list[Event] = [TaskCompleted(2, NOW)]
    events += [act(cmd).to_event(3 + i, NOW) for i, cmd in enumerate(cmds)]
    actions = [ActionTask(T1, "wf-1", record.run_id, cmd, "act", [cmd], {}, visible_at=NOW)
               for cmd in cmds]
    assert await store.commit_workflow_task(task, WorkflowCommit(
        "w1", 2, events, RUNNING, NOW, actions=actions, starts=starts, leased=leased,
        lease_until=NOW + LEASE))
    return actions


async def test_leased_actions_are_not_claimable_by_others(store: Store) -> None:
    await _commit_leased(store, 1, 2, leased=(1,))
    claimed = await claim_actions(store, "other", now=NOW + 1)
    assert [t.cmd for t in claimed] == [2]  # the unleased one only


async def test_the_committer_holds_its_leased_actions(store: Store) -> None:
    [action] = await _commit_leased(store, 1, leased=(1,))
    assert await store.extend_action_lease(action, "w1", lease=LEASE, now=NOW + 1)
    assert not await store.extend_action_lease(action, "other", lease=LEASE, now=NOW + 1)
    assert await store.complete_action_task(action, completion(action), now=NOW + 2)
    assert await claim_actions(store, "other", now=NOW + 3 * LEASE) == []


async def test_a_leased_action_whose_lease_expires_is_claimed_as_a_new_attempt(
        store: Store) -> None:
    await _commit_leased(store, 1, leased=(1,))
    assert await claim_actions(store, "other", now=NOW + LEASE - 1) == []
    [again] = await claim_actions(store, "other", now=NOW + LEASE + 1)
    assert (again.cmd, again.attempt) == (1, 2)  # the first attempt died with its worker


async def test_leasing_with_other_effects_in_the_commit(store: Store) -> None:
    start = Start(started("child-1"))
    await _commit_leased(store, 1, 2, leased=(2,), starts=(start,))
    claimed = await claim_actions(store, "other", now=NOW + 1)
    assert [t.cmd for t in claimed] == [1]
    assert await store.get_execution(T1, "child-1") is not None
