"""Worker liveness (``WorkerStore``) on every store: registration, heartbeats, and the release
of dead workers' tasks before their leases run out.

A worker is dead when its heartbeat is older than the timeout (every store), or when its
process is gone (SQLite and PostgreSQL: its lock is free; here, its store was closed without
unregistering, which drops the lock as a dead process would). Releasing expires the leases of
its tasks: another worker claims them at once, and an action's interrupted attempt counts.
"""

from __future__ import annotations

import asyncio
import os
import socket

import pytest

from durable._history import TaskCompleted
from durable._stores import ActionTask, Store, TaskRef, WorkflowCommit, open_store

from .test_store import (
    LEASE, NOW, RUNNING, T1, act, claim, claim_actions, claim_one, commit, create,
)

TIMEOUT = 5.0
HOST = socket.gethostname()


async def register(store: Store, identity: str, *, now: float = NOW) -> None:
    await store.register_worker(identity, host=HOST, pid=os.getpid(), now=now)


async def leased_work(store: Store, owner: str) -> tuple[TaskRef, ActionTask]:
    """An execution whose workflow task and one action task are both leased to ``owner``."""
    await create(store, "wf-1")
    task = await claim_one(store, "w0")
    assert await commit(store, task, act(1), owner="w0")
    [action] = await claim_actions(store, owner)
    await create(store, "wf-2")
    [flow] = await claim(store, owner)
    return TaskRef("w", flow.tenant, flow.workflow_id), action


async def test_register_records_and_heartbeats_keep_the_start(store: Store) -> None:
    await register(store, "w-b", now=NOW)
    await register(store, "w-a", now=NOW + 1)
    await register(store, "w-b", now=NOW + 2)  # a heartbeat
    workers = await store.list_workers()
    assert [(w.identity, w.host, w.pid) for w in workers] == [("w-a", HOST, os.getpid()),
                                                             ("w-b", HOST, os.getpid())]
    assert (workers[1].started_at, workers[1].heartbeat_at) == (NOW, NOW + 2)


async def test_a_live_worker_keeps_its_tasks(store: Store, other_store: Store) -> None:
    await register(store, "w-1")
    await leased_work(store, "w-1")
    released = await other_store.release_dead_workers(timeout=TIMEOUT, now=NOW + TIMEOUT)
    assert released.workers == [] and released.refs == []
    assert await claim_actions(other_store, "w-2", now=NOW + 1) == []
    assert [w.identity for w in await store.list_workers()] == ["w-1"]


async def test_a_silent_worker_is_released_before_its_lease_ends(store: Store,
                                                                 other_store: Store) -> None:
    await register(store, "w-1")
    flow, action = await leased_work(store, "w-1")
    later = NOW + TIMEOUT + 1  # long before NOW + LEASE
    assert later < NOW + LEASE
    released = await other_store.release_dead_workers(timeout=TIMEOUT, now=later)
    assert released.workers == ["w-1"]
    assert set(released.refs) == {flow, TaskRef("a", action.tenant, action.workflow_id,
                                                 action.name, action.run_id, action.cmd)}
    [again] = await claim_actions(other_store, "w-2", now=later)
    assert (again.cmd, again.attempt) == (action.cmd, action.attempt + 1)  # it was an attempt
    assert [t.workflow_id for t in await claim(other_store, "w-2", now=later)] == ["wf-2"]
    assert await store.list_workers() == []
    # the outbox does not hand them out again: they count as dispatched when released
    assert await store.dispatch_due(now=later, older_than=1.0, limit=10) == []


async def test_callers_name_the_workers_they_know_are_alive(store: Store) -> None:
    await register(store, "w-1")
    released = await store.release_dead_workers(timeout=TIMEOUT, now=NOW + 60,
                                                alive=["w-1"])
    assert released.workers == []
    assert [w.identity for w in await store.list_workers()] == ["w-1"]


async def test_a_heartbeat_keeps_a_worker_alive(store: Store) -> None:
    await register(store, "w-1")
    await register(store, "w-1", now=NOW + 4)
    assert (await store.release_dead_workers(timeout=TIMEOUT, now=NOW + 8)).workers == []
    assert (await store.release_dead_workers(timeout=TIMEOUT, now=NOW + 10)).workers == ["w-1"]


async def test_concurrent_callers_release_each_worker_once(store: Store,
                                                           other_store: Store) -> None:
    for n in range(3):
        await register(store, f"w-{n}")
    first, second = await asyncio.gather(
        store.release_dead_workers(timeout=TIMEOUT, now=NOW + 10),
        other_store.release_dead_workers(timeout=TIMEOUT, now=NOW + 10))
    assert sorted(first.workers + second.workers) == ["w-0", "w-1", "w-2"]


async def test_unregister_releases_what_the_worker_still_holds(store: Store) -> None:
    await register(store, "w-1")
    flow, _ = await leased_work(store, "w-1")
    refs = await store.unregister_worker("w-1", now=NOW + 1)
    assert flow in refs and len(refs) == 2
    assert await store.list_workers() == []
    assert len(await claim_actions(store, "w-2", now=NOW + 1)) == 1


async def test_a_worker_whose_process_is_gone_is_released_at_once(store: Store,
                                                                  store_url: str) -> None:
    if store_url.startswith("memory:"):
        pytest.skip("a memory store's workers share its one process")
    dying = await open_store(store_url, clock="caller")
    try:
        await register(dying, "w-dead")
        await leased_work(dying, "w-dead")
        await register(store, "w-live")
    finally:
        await dying.close()  # its lock is dropped, as when its process dies
    released = await store.release_dead_workers(timeout=TIMEOUT, now=NOW)  # heartbeat fresh
    assert released.workers == ["w-dead"] and len(released.refs) == 2
    assert len(await claim_actions(store, "w-live", now=NOW)) == 1
    assert [w.identity for w in await store.list_workers()] == ["w-live"]


async def test_heartbeat_details_stay_with_the_call_across_attempts(store: Store) -> None:
    _, action = await leased_work(store, "w-1")
    assert await store.action_heartbeat_details(action) is None
    assert await store.record_action_heartbeat(action, "w-1", b"\x81\xa1n\x03", lease=LEASE,
                                               now=NOW + 1)
    assert not await store.record_action_heartbeat(action, "w-2", b"\xc0", lease=LEASE,
                                                   now=NOW + 1)  # not its lease
    await store.retry_action_task(action, "w-1", visible_at=NOW + 2, error="boom", now=NOW + 1)
    [again] = await claim_actions(store, "w-2", now=NOW + 2)
    assert again.attempt == action.attempt + 1
    assert await store.action_heartbeat_details(again) == b"\x81\xa1n\x03"


async def test_recording_a_heartbeat_extends_the_lease(store: Store) -> None:
    _, action = await leased_work(store, "w-1")
    assert await store.record_action_heartbeat(action, "w-1", b"\x01", lease=LEASE,
                                               now=NOW + LEASE - 1)
    assert await claim_actions(store, "w-2", now=NOW + LEASE + 1) == []  # still held


async def test_what_a_dead_worker_s_late_commit_leased_it_is_released_soon(
        store: Store, store_url: str) -> None:
    """PostgreSQL finishes a statement whose client died, then finds it gone: a commit that
    a worker's process sent before it died can land after its release. What it leased to the
    worker is released by the next looks of the releasing store, not at the lease's end."""
    if not store_url.startswith("postgresql:"):
        pytest.skip("SQLite rolls back the transaction of a process that dies; a memory "
                    "store's workers share its one process")
    dying = await open_store(store_url, clock="caller")
    try:
        await register(dying, "w-dead")
        await create(dying, "wf-late")
        task = await claim_one(dying, "w-dead")
    finally:
        await dying.close()
    released = await store.release_dead_workers(timeout=TIMEOUT, now=NOW)
    assert released.workers == ["w-dead"]
    # the dead process's commit lands now, leasing the action it schedules to the dead worker
    late = await open_store(store_url, clock="caller")
    try:
        record = await late.get_execution(T1, "wf-late")
        assert record is not None
        action = ActionTask(T1, "wf-late", record.run_id, 1, "act", [1], {}, visible_at=NOW)
        assert await late.commit_workflow_task(task, WorkflowCommit(
            "w-dead", 2, [TaskCompleted(2, NOW), act(1).to_event(3, NOW)], RUNNING, NOW,
            actions=[action], leased=(1,), lease_until=NOW + LEASE))
    finally:
        await late.close()
    assert await claim_actions(store, "w-live", now=NOW + 1) == []  # leased to the dead one
    refs: list[TaskRef] = []
    for _ in range(40):  # the looks come 0.25 s, 1 s and 3 s after the release
        refs += (await store.release_dead_workers(timeout=TIMEOUT, now=NOW + 1)).refs
        if refs:
            break
        await asyncio.sleep(0.1)
    assert [(r.kind, r.cmd) for r in refs] == [("a", 1)]
    assert len(await claim_actions(store, "w-live", now=NOW + 1)) == 1
