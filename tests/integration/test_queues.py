"""Task queues end to end, on every store and with Redis dispatch: a task reaches only a worker
that hosts its name on its queue; children, signals, queries and cancellation cross pools."""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from typing import Any

import pytest

import durable
from durable.errors import ArgumentTypeError, ValidationError

from ._env import Env, env, env_spec  # noqa: F401 - fixtures

# Which pool (worker) ran an action: each worker's tasks inherit the value set when it started.
POOL: ContextVar[str] = ContextVar("pool", default="none")


@durable.action(name="QueuesWork")
async def work(tag: str) -> str:
    return f"{tag}@{POOL.get()}"


@durable.workflow(name="QueuesChild", queue="b")
async def child(ctx: durable.Context, tag: str) -> str:
    return await ctx.run(work, tag, queue="b")


@durable.workflow(name="QueuesFlow", queue="flows")
async def flow(ctx: durable.Context) -> list[str]:
    done = [await ctx.run(work, "x", queue="a"), await ctx.run(work, "y", queue="b")]
    done.append(await (await ctx.start_child(child, "z")))
    ctx.set_state("waiting")
    event = await ctx.wait_for("go")
    assert event is not None
    done.append(await ctx.run(work, str(event.payload), queue="a"))
    return done


@durable.workflow(name="QueuesSleeper", queue="flows")
async def sleeper(ctx: durable.Context) -> str:
    ctx.set_state("sleeping")
    await ctx.sleep(3600)
    return "woke"


@durable.workflow(name="QueuesStray", queue="flows")
async def stray(ctx: durable.Context) -> str:
    ctx.set_state("calling")
    return await ctx.run(work, "lost", queue="c")


async def pools(env: Env) -> durable.Client:
    """Three pools: workflows only (queue "flows"); action ``work`` on "a"; the child workflow
    and ``work`` on "b". The client starting work is a fourth, hosting nothing."""
    for pool, workflows, actions, queues in [("flows", [flow, sleeper, stray], [], None),
                                             ("a", [], [work], ["a"]),
                                             ("b", [child], [work], ["b"])]:
        POOL.set(pool)
        await env.worker(await env.client(), workflows, actions, queues=queues)
    POOL.set("none")
    if env.kind == "redis":
        await env.server()
    return await env.client()


async def test_each_task_runs_only_on_a_pool_that_hosts_it(env: Env) -> None:
    client = await pools(env)
    handle = await client.start(flow, id="f1")
    assert (await handle.describe()).queue == "flows"
    await eventually_state(handle, "waiting")
    await client.get_handle("f1").send("go", "w")  # a handle that does not know the queue
    assert await handle.result(timeout=20) == ["x@a", "y@b", "z@b", "w@a"]
    kid = await client.get_handle("f1/" + (await handle.describe()).run_id[:8] + "/2").describe()
    assert (kid.workflow, kid.queue, kid.status) == ("QueuesChild", "b", "completed")


async def test_queries_and_cancellation_reach_another_pool(env: Env) -> None:
    client = await pools(env)
    handle = await client.start(sleeper, id="s1")
    await eventually_state(handle, "sleeping")
    await client.get_handle("s1").cancel()
    with pytest.raises(durable.errors.WorkflowCancelledError):
        await handle.result(timeout=20)


async def test_start_names_another_queue_than_the_workflow_own(env: Env) -> None:
    client = await pools(env)
    # "flows" hosts QueuesChild on no queue; pool b hosts it on "b": started there, it runs
    assert await (await client.start(child, "c", queue="b")).result(timeout=20) == "c@b"


async def test_describe_says_what_no_live_worker_hosts(env: Env) -> None:
    client = await pools(env)
    nowhere = await client.start(flow, id="n1", queue="nowhere")
    assert (await nowhere.describe()).waiting == [
        "no worker hosts workflow 'QueuesFlow' on queue 'nowhere'"]
    handle = await client.start(stray, id="s1")
    await eventually_state(handle, "calling")
    for _ in range(500):  # the action task is committed with the workflow task
        described = await handle.describe()
        if described.pending_actions:
            break
        await asyncio.sleep(0.01)
    assert described.waiting == ["no worker hosts action 'QueuesWork' on queue 'c'"]
    POOL.set("c")
    await env.worker(await env.client(), [], [work], queues=["c"])
    assert await handle.result(timeout=20) == "lost@c"
    assert (await handle.describe()).waiting == []


async def eventually_state(handle: durable.WorkflowHandle[Any], state: str) -> None:
    for _ in range(2000):
        if (await handle.describe()).state == state:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{handle} never reached state {state!r}")


@pytest.mark.parametrize("queue, error", [
    ("", ValidationError), ("a\x00b", ValidationError), ("x" * 513, ValidationError),
    ("new\nline", ValidationError), (3, ArgumentTypeError), (None, ArgumentTypeError),
])
def test_bad_queue_names_are_typed_errors(queue: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        durable.workflow(queue=queue)
    with pytest.raises(error):
        durable.action(queue=queue)


async def test_bad_queue_arguments_of_start_and_worker(tmp_path: Any) -> None:
    async with durable.connect(f"sqlite:///{tmp_path}/q.db") as client:
        with pytest.raises(ValidationError):
            await client.start(flow, queue="")
        with pytest.raises(ArgumentTypeError):
            await client.start(flow, queue=7)  # type: ignore[arg-type]
        with pytest.raises(ArgumentTypeError):
            durable.Worker(client, [flow], queues="a")
        with pytest.raises(ValidationError):
            durable.Worker(client, [flow], queues=[])
        with pytest.raises(ValidationError):
            durable.Worker(client, [flow], queues=["ok", ""])
        assert durable.Worker(client, [flow], queues=["any-name"]).hosted_workflows == {
            "any-name\x1eQueuesFlow"}  # unknown queue names are fine
