"""Child workflows end to end, on every store and with Redis dispatch.

The child is created in the parent's commit, its outcome is appended to the parent in the
child's final commit, and a parent's end cancels its children of policy "cancel" in the same
commit. Failures propagate as exceptions; a taken id is a clear error; a child may run on a
worker that does not host the parent.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import pytest

import durable
from _support import eventually
from faults._checks import check_history
from durable._history import (
    CancelRequested, ChildCancelled, ChildCompleted, ChildInitiated, ChildStarted, Event,
    WorkflowCancelled, WorkflowStarted,
)
from durable.errors import WorkflowCancelledError, WorkflowFailedError

from ._env import Env, env, env_spec  # noqa: F401 - fixtures

pytestmark = pytest.mark.integration

seen: dict[str, list[Any]] = defaultdict(list)


@durable.action(name="engine_child_work")
async def work(n: int) -> int:
    seen[durable.action_info().workflow_id].append(n)
    return n * 2


@durable.workflow(name="EngineChild", version="7")
async def child(ctx: durable.Context, n: int, fail: bool = False) -> dict[str, Any]:
    doubled = await ctx.run(work, n)
    if fail:
        raise KeyError(f"no stock for {n}")
    return {"doubled": doubled, "parent": ctx.info.workflow_id}


@durable.workflow(name="EngineWaitingChild")
async def waiting_child(ctx: durable.Context) -> str:
    try:
        event = await ctx.wait_for("finish")
    except asyncio.CancelledError:
        ctx.set_state("cancelled by the parent")
        raise
    return f"finished {event.payload if event else None}"


@durable.workflow(name="EngineContinuingChild")
async def continuing_child(ctx: durable.Context, n: int) -> int:
    await ctx.run(work, n)
    if n < 2:
        ctx.continue_as_new(n + 1)
    return n


@durable.workflow(name="EngineParent")
async def parent(ctx: durable.Context, n: int, fail: bool = False) -> Any:
    handle = await ctx.start_child(child, n, fail, id=f"{ctx.info.workflow_id}-child")
    try:
        return {"child": await handle, "id": handle.workflow_id}
    except WorkflowFailedError as exc:
        return {"failed": exc.workflow_id, "type": exc.error_type, "message": exc.error_message}


@durable.workflow(name="EngineCarelessParent")
async def careless_parent(ctx: durable.Context, n: int) -> Any:
    return await (await ctx.start_child(child, n, True, id="careless-child"))


@durable.workflow(name="EngineLeavingParent")
async def leaving_parent(ctx: durable.Context, policy: str) -> str:
    await ctx.start_child(waiting_child, id=f"left-{policy}", parent_close=policy)
    await ctx.wait_for("leave")
    return "left"


@durable.workflow(name="EngineWaitingParent")
async def waiting_parent(ctx: durable.Context) -> str:
    return await (await ctx.start_child(waiting_child, id="awaited"))


@durable.workflow(name="EngineParentOfContinuing")
async def parent_of_continuing(ctx: durable.Context) -> int:
    return await (await ctx.start_child(continuing_child, 0, id="continuing"))


@durable.workflow(name="EngineParentOfUnknown")
async def parent_of_unknown(ctx: durable.Context) -> None:
    await ctx.start_child("NoSuchWorkflow", 1)


PARENTS = [parent, careless_parent, leaving_parent, waiting_parent, parent_of_continuing,
           parent_of_unknown]
CHILDREN = [child, waiting_child, continuing_child]
ACTIONS = [work]


@pytest.fixture(autouse=True)
def _clear() -> None:
    seen.clear()


def of(events: list[Event], *types: type) -> list[Any]:
    return [e for e in events if isinstance(e, types)]


async def test_a_parent_awaits_its_childs_result(env: Env) -> None:
    client = await env.start(PARENTS + CHILDREN, ACTIONS)
    handle = await client.start(parent, 21, id="p1")
    assert await handle.result(timeout=30) == {
        "child": {"doubled": 42, "parent": "p1-child"}, "id": "p1-child"}
    events = await handle.history()
    [initiated] = of(events, ChildInitiated)
    assert (initiated.workflow, initiated.version, initiated.workflow_id) == (
        "EngineChild", "7", "p1-child")
    assert [type(e) for e in of(events, ChildStarted, ChildCompleted)] == [
        ChildStarted, ChildCompleted]
    kid = client.get_handle("p1-child")
    started = (await kid.history())[0]
    assert isinstance(started, WorkflowStarted) and started.parent is not None
    assert (started.parent.workflow_id, started.parent.cmd) == ("p1", initiated.cmd)
    assert started.parent.run_id == (await handle.describe()).run_id
    description = await kid.describe()
    assert (description.status, description.version) == ("completed", "7")
    assert {r.workflow_id for r in await client.list()} == {"p1", "p1-child"}
    assert seen["p1-child"] == [21]
    check_history(events)
    check_history(await kid.history())


async def test_a_child_that_fails_raises_in_the_parent(env: Env) -> None:
    client = await env.start(PARENTS + CHILDREN, ACTIONS)
    caught = await client.start(parent, 1, True, id="p2")
    assert await caught.result(timeout=30) == {
        "failed": "p2-child", "type": "KeyError", "message": "'no stock for 1'"}
    careless = await client.start(careless_parent, 1, id="p3")
    with pytest.raises(WorkflowFailedError) as info:
        await careless.result(timeout=30)
    assert info.value.error_type == "WorkflowFailedError"
    assert "child workflow 'careless-child' failed: KeyError" in info.value.error_message


async def test_parent_close_policy_cancel_and_abandon(env: Env) -> None:
    client = await env.start(PARENTS + CHILDREN, ACTIONS)
    for policy in ("cancel", "abandon"):
        handle = await client.start(leaving_parent, policy, id=f"leaving-{policy}")
        await eventually(lambda: _exists(client, f"left-{policy}"), what="the child")
        await eventually(lambda: _waits(client.get_handle(f"left-{policy}")),
                         what="the child to wait")
        await handle.send("leave")
        assert await handle.result(timeout=30) == "left"
    cancelled = client.get_handle("left-cancel")
    with pytest.raises(WorkflowCancelledError):
        await cancelled.result(timeout=30)
    assert (await cancelled.describe()).state == "cancelled by the parent"
    [request] = of(await cancelled.history(), CancelRequested)
    assert "its parent workflow 'leaving-cancel' ended" in request.reason
    abandoned = client.get_handle("left-abandon")
    assert (await abandoned.describe()).status == "running"
    await abandoned.send("finish", 1)
    assert await abandoned.result(timeout=30) == "finished 1"
    # the parent had ended: the child's outcome is not appended to it
    assert of(await client.get_handle("leaving-abandon").history(), ChildCompleted) == []


async def test_cancelling_a_parent_cancels_the_child_it_waits_for(env: Env) -> None:
    client = await env.start(PARENTS + CHILDREN, ACTIONS)
    handle = await client.start(waiting_parent, id="wp")
    kid = client.get_handle("awaited")
    await eventually(lambda: _exists(client, "awaited"), what="the child to exist")
    await eventually(lambda: _waits(kid), what="the child to wait")
    await handle.cancel()
    with pytest.raises(WorkflowCancelledError):
        await handle.result(timeout=30)
    with pytest.raises(WorkflowCancelledError):
        await kid.result(timeout=30)
    assert isinstance((await kid.history())[-1], WorkflowCancelled)
    check_history(await handle.history())
    check_history(await kid.history())


async def test_a_taken_child_id_is_a_clear_error_in_the_parent(env: Env) -> None:
    client = await env.start(PARENTS + CHILDREN, ACTIONS)
    squatter = await client.start(waiting_child, id="p4-child")
    await eventually(lambda: _waits(squatter), what="the unrelated execution to wait")
    handle = await client.start(parent, 1, id="p4")
    with pytest.raises(WorkflowFailedError) as info:
        await handle.result(timeout=30)
    assert info.value.error_type == "WorkflowAlreadyStartedError"
    assert "'p4-child' exists already" in info.value.error_message
    description = await squatter.describe()
    assert (description.status, description.history_length) == ("running", 2)  # untouched


async def test_a_child_that_continues_as_new_reports_its_last_run(env: Env) -> None:
    client = await env.start(PARENTS + CHILDREN, ACTIONS)
    handle = await client.start(parent_of_continuing, id="pc")
    assert await handle.result(timeout=30) == 2
    assert seen["continuing"] == [0, 1, 2]
    assert [e.result for e in of(await handle.history(), ChildCompleted)] == [2]


async def test_starting_an_unknown_child_fails_the_parent_and_starts_nothing(env: Env) -> None:
    client = await env.start(PARENTS + CHILDREN, ACTIONS)
    handle = await client.start(parent_of_unknown, id="pu")
    with pytest.raises(WorkflowFailedError) as info:
        await handle.result(timeout=30)
    assert info.value.error_type == "UnknownWorkflowError"
    assert "NoSuchWorkflow" in info.value.error_message
    assert [r.workflow_id for r in await client.list()] == ["pu"]


async def test_a_child_runs_on_a_worker_that_does_not_host_the_parent(env: Env) -> None:
    if env.kind == "redis":
        pytest.skip("workers that share a Redis prefix host the same workflows (README)")
    parents = await env.client()
    await env.worker(parents, PARENTS, [])
    children = await env.client()
    await env.worker(children, CHILDREN, ACTIONS)
    handle = await parents.start(parent, 5, id="split")
    assert (await handle.result(timeout=30))["child"] == {"doubled": 10, "parent": "split-child"}


async def _exists(client: durable.Client, workflow_id: str) -> bool:
    return await client.store.get_execution(client.tenant, workflow_id) is not None


async def _waits(handle: durable.WorkflowHandle[Any]) -> bool:
    events = await handle.history()
    return type(events[-1]).__name__ == "TaskCompleted"
