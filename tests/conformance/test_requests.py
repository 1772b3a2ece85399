"""Requests (queries and updates) in every store: submission, dedup, pending lists, answers
written once (alone or with a commit), the ``requested`` mark on workflow tasks and re-arming.
"""

from __future__ import annotations

import asyncio

import pytest

from durable._history import (
    CompleteWorkflow, ErrorInfo, EventReceived, TaskCompleted, UpdateAccepted, WorkflowCompleted,
)
from durable._stores import ExecutionUpdate, Reply, Request, Store, TaskRef, WorkflowCommit
from durable.errors import WorkflowNotFoundError

from .test_store import LEASE, NOW, RUNNING, T1, T2, claim, claim_one, commit, create, history

OOPS = ErrorInfo("ValueError", "no", "Traceback ...")


def query(rid: str = "q1", *, wf: str = "wf-1", tenant: str = T1, name: str = "status",
          args: list[object] | None = None) -> Request:
    return Request(tenant, wf, rid, "query", name, [1, {"a": [2]}] if args is None else args, 0.0)


def update(rid: str = "u1", *, wf: str = "wf-1", tenant: str = T1, name: str = "add",
           args: list[object] | None = None) -> Request:
    return Request(tenant, wf, rid, "update", name, [5] if args is None else args, 0.0)


async def finish(store: Store, wf: str = "wf-1") -> None:
    """Complete the execution (its first workflow task returns)."""
    task = await claim_one(store)
    assert task.workflow_id == wf
    assert await commit(store, task, CompleteWorkflow(1), update=ExecutionUpdate("completed",
                                                                                 None, {}, 1))


# ---- submitting -----------------------------------------------------------------------------


async def test_submit_records_a_pending_request_and_a_requested_task(store: Store) -> None:
    await create(store)
    task = await claim_one(store)
    assert not task.requested
    assert await commit(store, task)
    stored, made = await store.submit_request(query(), now=NOW + 1)
    assert made
    assert stored == Request(T1, "wf-1", "q1", "query", "status", [1, {"a": [2]}], NOW + 1)
    assert await store.get_request(T1, "wf-1", "q1") == stored
    assert await store.pending_requests(T1, "wf-1") == [stored]
    [task] = await claim(store, now=NOW + 1)
    assert task.requested and task.workflow_id == "wf-1"
    assert len(await history(store)) == 2  # a request is no event


async def test_submit_marks_a_task_that_waits_already(store: Store) -> None:
    await create(store)  # the WorkflowStarted task is runnable
    _, made = await store.submit_request(update(), now=NOW + 1)
    assert made
    [task] = await claim(store, now=NOW + 1)
    assert task.requested


async def test_submit_is_idempotent_per_request_id(store: Store) -> None:
    await create(store)
    first, _ = await store.submit_request(update(args=[1]), now=NOW)
    again, made = await store.submit_request(update(args=[2]), now=NOW + 1)
    assert again == first and made  # still pending: runnable again
    assert await store.pending_requests(T1, "wf-1") == [first]
    await store.answer_requests(T1, "wf-1", [Reply("u1", "ok", 6)], now=NOW + 2)
    answered, made = await store.submit_request(update(args=[3]), now=NOW + 3)
    assert not made
    assert (answered.status, answered.result, answered.args) == ("ok", 6, [1])  # type: ignore[union-attr]


async def test_a_rejected_update_is_replaced_by_the_next_attempt(store: Store) -> None:
    await create(store)
    await store.submit_request(update(args=[-1]), now=NOW)
    await store.answer_requests(T1, "wf-1", [Reply("u1", "rejected", error=OOPS)], now=NOW + 1)
    rejected = await store.get_request(T1, "wf-1", "u1")
    assert rejected is not None and rejected.status == "rejected" and rejected.error == OOPS
    retried, made = await store.submit_request(update(args=[4]), now=NOW + 2)
    assert made
    assert retried == Request(T1, "wf-1", "u1", "update", "add", [4], NOW + 2)
    assert await store.get_request(T1, "wf-1", "u1") == retried


async def test_submit_to_a_missing_execution_raises(store: Store) -> None:
    with pytest.raises(WorkflowNotFoundError):
        await store.submit_request(query(), now=NOW)
    await create(store, tenant=T2)
    with pytest.raises(WorkflowNotFoundError):  # tenants are separate
        await store.submit_request(query(tenant=T1), now=NOW)


async def test_an_ended_execution_takes_queries_but_no_new_updates(store: Store) -> None:
    await create(store)
    await store.submit_request(update("early"), now=NOW)
    await store.answer_requests(T1, "wf-1", [Reply("early", "ok", 1)], now=NOW)
    await finish(store)
    assert await store.submit_request(update("late"), now=NOW + 1) == (None, False)
    assert await store.get_request(T1, "wf-1", "late") is None
    known, made = await store.submit_request(update("early"), now=NOW + 1)  # a retry
    assert known is not None and known.status == "ok" and not made
    stored, made = await store.submit_request(query(), now=NOW + 1)
    assert made and stored is not None and stored.status == "pending"
    [task] = await claim(store, now=NOW + 1)
    assert task.requested  # a worker answers it from the final state


# ---- pending requests and answers -----------------------------------------------------------


async def test_pending_requests_are_oldest_first_and_per_execution(store: Store) -> None:
    await create(store, "wf-1")
    await create(store, "wf-2")
    await create(store, "wf-1", tenant=T2)
    await store.submit_request(update("b"), now=NOW + 2)
    await store.submit_request(query("a"), now=NOW + 1)
    await store.submit_request(query("c", wf="wf-2"), now=NOW)
    await store.submit_request(query("d", tenant=T2), now=NOW)
    assert [r.id for r in await store.pending_requests(T1, "wf-1")] == ["a", "b"]
    assert [r.id for r in await store.pending_requests(T1, "wf-2")] == ["c"]
    assert [r.id for r in await store.pending_requests(T2, "wf-1")] == ["d"]
    assert await store.pending_requests(T2, "wf-2") == []


async def test_an_answer_is_written_once(store: Store) -> None:
    await create(store)
    await store.submit_request(update(), now=NOW)
    await store.answer_requests(T1, "wf-1", [Reply("u1", "accepted")], now=NOW)
    assert await store.pending_requests(T1, "wf-1") == []  # accepted: not validated again
    await store.answer_requests(T1, "wf-1", [Reply("u1", "ok", {"total": 6})], now=NOW)
    await store.answer_requests(T1, "wf-1", [Reply("u1", "failed", error=OOPS),
                                             Reply("u1", "accepted")], now=NOW)
    stored = await store.get_request(T1, "wf-1", "u1")
    assert stored is not None
    assert (stored.status, stored.result, stored.error) == ("ok", {"total": 6}, None)
    await store.answer_requests(T1, "wf-1", [Reply("ghost", "ok", 1)], now=NOW)  # no such: ignored
    assert await store.get_request(T1, "wf-1", "ghost") is None


async def test_replies_of_one_call_apply_in_order(store: Store) -> None:
    await create(store)
    await store.submit_request(update(), now=NOW)
    await store.answer_requests(T1, "wf-1", [Reply("u1", "accepted"), Reply("u1", "failed",
                                                                            error=OOPS)], now=NOW)
    stored = await store.get_request(T1, "wf-1", "u1")
    assert stored is not None and (stored.status, stored.error) == ("failed", OOPS)


async def test_commit_writes_its_replies_with_it_or_not_at_all(store: Store) -> None:
    await create(store)
    await store.submit_request(update(), now=NOW)
    await store.submit_request(query(), now=NOW)
    task = await claim_one(store)
    accepted = UpdateAccepted(2, NOW, "u1", "add", [5])
    events = [accepted, TaskCompleted(3, NOW)]
    replies = [Reply("u1", "accepted"), Reply("q1", "ok", "fine")]
    stale = await store.commit_workflow_task(
        task, WorkflowCommit("w1", 3, events, RUNNING, NOW, replies=replies))
    assert not stale  # expected the wrong seq: nothing written, no answer either
    assert [r.status for r in await store.pending_requests(T1, "wf-1")] == ["pending", "pending"]
    assert await store.commit_workflow_task(
        task, WorkflowCommit("w1", 2, events, RUNNING, NOW, replies=replies))
    assert (await history(store))[1:] == events
    assert await store.pending_requests(T1, "wf-1") == []
    answered = await store.get_request(T1, "wf-1", "q1")
    assert answered is not None and (answered.status, answered.result) == ("ok", "fine")
    assert await claim(store) == []  # the commit finished the task


async def test_answers_wake_watchers_in_process(store: Store) -> None:
    await create(store)
    await store.submit_request(query(), now=NOW)
    with store.wakeup.watching_reply(T1, "wf-1", "q1") as replied:
        await store.answer_requests(T1, "wf-1", [Reply("q1", "ok", 1)], now=NOW)
        await asyncio.wait_for(replied, 5)


async def test_an_accepted_mark_wakes_nobody(store: Store) -> None:
    await create(store)
    await store.submit_request(update(), now=NOW)
    with store.wakeup.watching_reply(T1, "wf-1", "u1") as replied:
        await store.answer_requests(T1, "wf-1", [Reply("u1", "accepted")], now=NOW)
        await asyncio.sleep(0)
        assert not replied.done()


async def test_forget_deletes_the_request(store: Store) -> None:
    await create(store)
    await store.submit_request(query(), now=NOW)
    await store.forget_request(T1, "wf-1", "q1")
    assert await store.get_request(T1, "wf-1", "q1") is None
    assert await store.pending_requests(T1, "wf-1") == []
    await store.forget_request(T1, "wf-1", "q1")  # twice is fine


async def test_payloads_round_trip(store: Store) -> None:
    await create(store)
    args: list[object] = [None, 1.5, "é", [1, [2]], {"k": {"n": None}}, b"\x00\xff", (3, 4)]
    await store.submit_request(update(args=args), now=NOW)
    [pending] = await store.pending_requests(T1, "wf-1")
    assert pending.args == [*args[:-1], [3, 4]]  # every store gives back lists for tuples
    await store.answer_requests(T1, "wf-1", [Reply("u1", "ok", {"nested": (1, None, "x")})],
                                now=NOW)
    stored = await store.get_request(T1, "wf-1", "u1")
    assert stored is not None and stored.result == {"nested": [1, None, "x"]}


# ---- the requested mark and re-arming -------------------------------------------------------


async def test_the_requested_mark_survives_a_release_and_ends_with_the_task(store: Store) -> None:
    await create(store)
    await store.submit_request(query(), now=NOW)
    task = await claim_one(store)
    assert task.requested
    await store.release_workflow_task(task, "w1", delay=0, error=None, now=NOW)
    again = await claim_one(store)
    assert again.requested
    assert await commit(store, again)
    await store.append_input(T1, "wf-1", EventReceived(0, 0.0, "go"), now=NOW + 1)
    later = await claim_one(store, now=NOW + 1)
    assert not later.requested  # a new task for a new input


async def test_a_request_that_arrives_during_a_task_is_rearmed_after_it(store: Store) -> None:
    await create(store)
    task = await claim_one(store)  # claimed before the request arrives
    await store.submit_request(query(), now=NOW)
    assert not await store.rearm_request(T1, "wf-1", "q1", now=NOW)  # a task exists: nothing to do
    assert await commit(store, task)  # ... and its commit finishes it
    assert await claim(store) == []
    assert await store.rearm_request(T1, "wf-1", "q1", now=NOW + 1)
    assert not await store.rearm_request(T1, "wf-1", "q1", now=NOW + 1)
    [rearmed] = await claim(store, now=NOW + 1)
    assert rearmed.requested


async def test_rearm_ignores_answered_accepted_and_unknown_requests(store: Store) -> None:
    await create(store)
    task = await claim_one(store)
    await store.submit_request(query("answered"), now=NOW)
    await store.submit_request(update("accepted"), now=NOW)
    assert await commit(store, task)
    await store.answer_requests(T1, "wf-1", [Reply("answered", "ok", 1),
                                             Reply("accepted", "accepted")], now=NOW)
    for rid in ("answered", "accepted", "unknown"):
        assert not await store.rearm_request(T1, "wf-1", rid, now=NOW)
    assert not await store.rearm_request(T1, "nowhere", "q1", now=NOW)
    assert await claim(store) == []


async def test_claim_refs_carries_the_requested_mark(store: Store) -> None:
    await create(store)
    await store.submit_request(query(), now=NOW)
    workflows, _ = await store.claim_refs([TaskRef("w", T1, "wf-1")], "w1", workflows={"Flow"},
                                          actions=set(), lease=LEASE, now=NOW)
    assert [t.requested for t in workflows] == [True]


async def test_a_task_that_only_answered_finishes_without_touching_the_execution(
        store: Store) -> None:
    await create(store)
    await finish(store)
    before = await store.get_execution(T1, "wf-1")
    assert before is not None
    await store.submit_request(query(), now=NOW + 1)
    task = await claim_one(store, now=NOW + 1)
    with store.wakeup.watching(T1, "wf-1") as ended:
        assert await store.finish_workflow_task(task, "w1", before.last_seq + 1,
                                                replies=[Reply("q1", "ok", "done")], now=NOW + 2)
        await asyncio.sleep(0)
        assert not ended.done()  # no second "ended" notice
    assert await store.get_execution(T1, "wf-1") == before  # not even updated_at moved
    assert isinstance((await history(store))[-1], WorkflowCompleted)
    answered = await store.get_request(T1, "wf-1", "q1")
    assert answered is not None and answered.result == "done"
    assert await claim(store, now=NOW + 2) == []


async def test_finishing_a_task_needs_its_lease_and_an_unchanged_history(store: Store) -> None:
    await create(store)
    await store.submit_request(query(), now=NOW)
    task = await claim_one(store)
    assert not await store.finish_workflow_task(task, "intruder", 2,
                                                replies=[Reply("q1", "ok", 1)], now=NOW)
    await store.append_input(T1, "wf-1", EventReceived(0, 0.0, "go"), now=NOW)
    assert not await store.finish_workflow_task(task, "w1", 2, replies=[Reply("q1", "ok", 1)],
                                                now=NOW)  # an input arrived: run it first
    assert [r.id for r in await store.pending_requests(T1, "wf-1")] == ["q1"]
    assert len(await claim(store, now=NOW + LEASE + 1)) == 1  # the task is still there
