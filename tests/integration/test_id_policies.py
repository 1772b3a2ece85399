"""Workflow id policies (issue 15 item 1): ``client.start(on_conflict=, id_reuse=)`` on an id
that an execution has, running or ended; a new run under the id; concurrent starts. On every
store, with Redis and without."""

from __future__ import annotations

import asyncio

import pytest

import durable
from durable._history import ChildFailed, TaskCompleted, WorkflowStarted, WorkflowTerminated
from durable.errors import InvalidArgumentError, WorkflowAlreadyStartedError, WorkflowFailedError

from ._env import Env, env, env_spec  # noqa: F401 - fixtures


@durable.workflow(name="IPWait")
async def wait(ctx: durable.Context, label: str) -> str:
    event = await ctx.wait_for("go")
    return f"{label}:{event.payload}"


@durable.workflow(name="IPQuick")
async def quick(ctx: durable.Context, label: str) -> str:
    if label == "boom":
        raise ValueError("boom")
    return label


@durable.workflow(name="IPParent")
async def parent(ctx: durable.Context, child_id: str) -> str:
    child = await ctx.start_child(wait, "child", id=child_id)
    try:
        return str(await child)
    except WorkflowFailedError as exc:
        return f"child {exc.error_type}"


async def _runs(handle: durable.WorkflowHandle[object]) -> list[str]:
    """The run ids of the execution, newest first, by WorkflowStarted.previous_run."""
    runs: list[str] = []
    run: str | None = (await handle.describe()).run_id
    while run is not None:
        runs.append(run)
        started = (await handle.history(run_id=run))[0]
        assert isinstance(started, WorkflowStarted)
        run = started.previous_run
    return runs


async def test_running_id_same_start_is_its_handle_another_is_refused(env: Env) -> None:
    client = await env.start([wait, quick], [])
    first = await client.start(wait, "a", id="job")
    again = await client.start(wait, "a", id="job")  # a retried start
    assert (await again.describe()).run_id == (await first.describe()).run_id
    for _ in range(2000):  # its first task has run: it waits for "go", writing nothing
        if any(isinstance(e, TaskCompleted) for e in await first.history()):
            break
        await asyncio.sleep(0.005)
    length = len(await first.history())
    with pytest.raises(WorkflowAlreadyStartedError) as other_args:
        await client.start(wait, "b", id="job")
    assert other_args.value.workflow_id == "job" and "other arguments" in other_args.value.reason
    with pytest.raises(WorkflowAlreadyStartedError) as other_workflow:
        await client.start(quick, "a", id="job")
    assert "other workflow" in other_workflow.value.reason
    with pytest.raises(WorkflowAlreadyStartedError, match="on_conflict='fail'"):
        await client.start(wait, "a", id="job", on_conflict="fail")
    used = await client.start(wait, "b", id="job", on_conflict="use_existing")
    assert len(await used.history()) == length  # nothing was written by the refused ones
    await first.send("go", 1)
    assert await used.result(timeout=20) == "a:1"


async def test_terminate_existing_ends_the_run_and_starts_another(env: Env) -> None:
    client = await env.start([wait], [])
    old = await client.start(wait, "old", id="t")
    old_run = (await old.describe()).run_id
    new = await client.start(wait, "new", id="t", on_conflict="terminate_existing")
    assert (await new.describe()).run_id != old_run
    ended = await old.history(run_id=old_run)
    assert isinstance(ended[-1], WorkflowTerminated)
    assert ended[-1].run_id == (await new.describe()).run_id
    await new.send("go", 2)
    assert await old.result(timeout=20) == "new:2"  # a handle follows the id to its new run
    assert await _runs(new) == [(await new.describe()).run_id, old_run]
    assert not any(isinstance(e, WorkflowTerminated) for e in await new.history())


async def test_closed_id_reuse_policies(env: Env) -> None:
    client = await env.start([quick], [])
    done = await client.start(quick, "one", id="r")
    assert await done.result(timeout=20) == "one"
    with pytest.raises(WorkflowAlreadyStartedError, match="completed"):
        await client.start(quick, "two", id="r", id_reuse="reject")
    with pytest.raises(WorkflowAlreadyStartedError):
        await client.start(quick, "two", id="r", id_reuse="allow_failed_only")
    again = await client.start(quick, "one", id="r")  # default "allow": even the same arguments
    assert await again.result(timeout=20) == "one"
    assert len(await _runs(again)) == 2
    failed = await client.start(quick, "boom", id="f")
    with pytest.raises(WorkflowFailedError):
        await failed.result(timeout=20)
    retried = await client.start(quick, "fixed", id="f", id_reuse="allow_failed_only")
    assert await retried.result(timeout=20) == "fixed"
    with pytest.raises(WorkflowAlreadyStartedError, match="id_reuse='reject'"):
        await client.start(quick, "x", id="f", id_reuse="reject")


async def test_bad_policy_names_are_typed_errors_and_write_nothing(env: Env) -> None:
    client = await env.start([quick], [])
    for kwargs in ({"on_conflict": "replace"}, {"id_reuse": "sometimes"}, {"on_conflict": 1}):
        with pytest.raises(InvalidArgumentError) as bad:
            await client.start(quick, "x", id="bad", **kwargs)  # type: ignore[arg-type]
        assert isinstance(bad.value, ValueError) and bad.value.parameter in kwargs
    assert await client.list() == []


async def test_concurrent_starts_of_one_id_begin_one_run(env: Env) -> None:
    client = await env.start([quick, wait], [])
    other = await env.client()
    first = await client.start(quick, "one", id="c")
    await first.result(timeout=20)
    closed_run = (await first.describe()).run_id
    # Two clients reuse the ended id at once: one new run; the other start finds it running
    # with the same workflow and arguments, and returns its handle.
    a, b = await asyncio.gather(client.start(wait, "w", id="c"), other.start(wait, "w", id="c"))
    run_a, run_b = (await a.describe()).run_id, (await b.describe()).run_id
    assert run_a == run_b != closed_run
    assert await _runs(a) == [run_a, closed_run]
    # Two starts of a fresh id with other arguments: one runs, the other is refused.
    outcomes = await asyncio.gather(client.start(wait, "x", id="d"),
                                    other.start(wait, "y", id="d"), return_exceptions=True)
    refused = [o for o in outcomes if isinstance(o, WorkflowAlreadyStartedError)]
    assert len(refused) == 1, outcomes
    await a.send("go", 3)
    assert await b.result(timeout=20) == "w:3"


async def test_terminating_a_child_tells_its_parent(env: Env) -> None:
    client = await env.start([parent, wait], [])
    handle = await client.start(parent, "kid", id="p")
    for _ in range(1000):
        if await client.store.get_execution(env.tenant, "kid") is not None:
            break
        await asyncio.sleep(0.01)
    replaced = await client.start(wait, "solo", id="kid", on_conflict="terminate_existing")
    assert await handle.result(timeout=20) == "child WorkflowTerminated"
    parent_events = await handle.history()
    assert sum(isinstance(e, ChildFailed) for e in parent_events) == 1
    await replaced.send("go", 4)
    assert await replaced.result(timeout=20) == "solo:4"
