"""Inline actions never hold up requests: while a long inline attempt runs, a query is
answered and a cancellation is delivered (and cancels the attempt), on every store.

The inline attempt here would take ``LONG`` seconds: the assertions are that the answers came
while it was still running, and that the cancelled attempt never finished.
"""

from __future__ import annotations

import asyncio
import time

import durable

from ._env import Env, env, env_spec  # noqa: F401 - fixtures

LONG = 5.0
_running: dict[str, int] = {}  # attempts of the slow action still running, by workflow id
_finished: set[str] = set()
_cancelled: set[str] = set()
_released: set[str] = set()  # attempts the test is done with: they return at once


@durable.action(name="inline_requests_test_slow", inline=True)
async def slow() -> str:
    """An inline attempt of ``LONG`` seconds."""
    wf = durable.action_info().workflow_id
    _running[wf] = _running.get(wf, 0) + 1
    try:
        until = time.monotonic() + LONG
        while wf not in _released and time.monotonic() < until:
            await asyncio.sleep(0.01)
    except asyncio.CancelledError:
        _cancelled.add(wf)
        raise
    finally:
        _running[wf] -= 1
    _finished.add(wf)
    return "slept"


@durable.workflow(name="InlineRequestsTestFlow")
async def flow(ctx: durable.Context) -> str:
    ctx.on_query("phase", lambda: "sleeping")
    return await ctx.run(slow)


async def _started(client: durable.Client, env: Env) -> durable.WorkflowHandle[str]:
    handle = await client.start(flow, id=f"slow-{env.tenant}")
    while not _running.get(handle.workflow_id):
        await asyncio.sleep(0.01)
    return handle


async def test_a_query_is_answered_while_an_inline_action_runs(env: Env) -> None:
    client = await env.start([flow], [slow], lease=30.0)  # the default lease
    handle = await _started(client, env)
    assert await handle.query("phase", timeout=LONG / 2) == "sleeping"
    assert handle.workflow_id not in _finished  # answered before the action could end
    _released.add(handle.workflow_id)  # the worker's stop then waits for no attempt


async def test_a_cancel_cancels_a_running_inline_action(env: Env) -> None:
    client = await env.start([flow], [slow], lease=30.0)  # the default lease
    handle = await _started(client, env)
    await handle.cancel()
    assert (await asyncio.wait_for(_ended(handle), LONG / 2)) == "cancelled"
    assert handle.workflow_id in _cancelled and handle.workflow_id not in _finished


async def _ended(handle: durable.WorkflowHandle[str]) -> str:
    while (status := (await handle.describe()).status) == "running":
        await asyncio.sleep(0.02)
    return status
