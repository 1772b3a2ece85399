"""Workflow to workflow: ``ctx.external(id).send`` / ``.cancel()`` are recorded as commands and
delivered exactly once, with the sender's commit; ``ctx.info.parent`` names a child's parent.
On every store, with Redis and without."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import durable
from durable._history import ExternalCancelRequested, ExternalSignalled
from durable.errors import ArgumentTypeError, ValidationError, WorkflowCancelledError

from ._env import Env, env, env_spec  # noqa: F401 - fixtures


@durable.workflow(name="ExtInbox")
async def inbox(ctx: durable.Context, expected: int) -> list[Any]:
    got = []
    for _ in range(expected):
        event = await ctx.wait_for("note")
        assert event is not None
        got.append([event.payload, event.metadata])
    return got


@durable.workflow(name="ExtSleeper")
async def sleeper(ctx: durable.Context) -> str:
    await ctx.sleep(3600)
    return "woke"


@durable.action(name="ExtStep")
async def step(n: int) -> int:
    return n + 1


@durable.workflow(name="ExtSender")
async def sender(ctx: durable.Context, target: str, victim: str) -> str:
    await ctx.external(target).send("note", {"n": 1}, metadata={"from": ctx.info.workflow_id})
    n = await ctx.run(step, 1)  # replayed after this: the send is not issued again
    await ctx.external(target).send("note", {"n": n})
    await ctx.external(victim).cancel("not needed")
    await ctx.external("does-not-exist").send("note", 0)  # nothing to deliver to: no error
    return "sent"


@durable.workflow(name="ExtChild")
async def child(ctx: durable.Context) -> list[str | None]:
    parent = ctx.info.parent
    assert parent is not None
    await ctx.external(parent.workflow_id).send("note", "from child")
    return [parent.workflow_id, parent.run_id]


@durable.workflow(name="ExtParent")
async def parent(ctx: durable.Context) -> list[Any]:
    assert ctx.info.parent is None
    result = await (await ctx.start_child(child, id=f"{ctx.info.workflow_id}-child"))
    event = await ctx.wait_for("note")
    assert event is not None
    return [result, ctx.info.run_id, event.payload]


async def test_events_and_cancellations_reach_other_executions_once(env: Env) -> None:
    client = await env.client()
    await env.worker(client, [inbox, sleeper, sender], [step])
    target = await client.start(inbox, 2, id="target")
    victim = await client.start(sleeper, id="victim")
    await asyncio.sleep(0.05)
    handle = await client.start(sender, "target", "victim", id="sender")
    assert await handle.result(timeout=20) == "sent"
    assert await target.result(timeout=20) == [[{"n": 1}, {"from": "sender"}], [{"n": 2}, None]]
    with pytest.raises(WorkflowCancelledError):
        await victim.result(timeout=20)
    received = [e for e in await target.history() if type(e).__name__ == "EventReceived"]
    assert len(received) == 2  # once each, though the sender's tasks replayed the sends
    recorded = await handle.history()
    assert [e.workflow_id for e in recorded.of_type(ExternalSignalled)] == [
        "target", "target", "does-not-exist"]
    assert [(e.workflow_id, e.reason)
            for e in recorded.of_type(ExternalCancelRequested)] == [("victim", "not needed")]


async def test_a_child_knows_its_parent_and_writes_to_it(env: Env) -> None:
    client = await env.client()
    await env.worker(client, [parent, child], [])
    handle = await client.start(parent, id="p1")
    (child_parent, child_run), run_id, payload = await handle.result(timeout=20)
    assert (child_parent, child_run, payload) == ("p1", run_id, "from child")


@durable.workflow(name="ExtBadTarget")
async def bad_target(ctx: durable.Context, target: Any, name: Any) -> str:
    try:
        ctx.external(target)
    except (ArgumentTypeError, ValidationError) as exc:
        return type(exc).__name__
    try:
        await ctx.external("other").send(name)
    except ArgumentTypeError as exc:
        return type(exc).__name__
    return "accepted"


@pytest.mark.parametrize(("target", "name", "error"), [
    (5, "note", "ArgumentTypeError"),
    ("", "note", "ValidationError"),
    ("ExtSelf", "note", "ValidationError"),  # itself
    ("other", 5, "ArgumentTypeError"),
])
async def test_bad_targets_and_names_are_typed_errors(env: Env, target: Any, name: Any,
                                                      error: str) -> None:
    client = await env.client()
    await env.worker(client, [bad_target], [])
    handle = await client.start(bad_target, target, name, id="ExtSelf")
    assert await handle.result(timeout=20) == error
