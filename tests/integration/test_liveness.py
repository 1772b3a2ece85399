"""Workers register themselves, release what they hold when they stop, and (with servers)
release the tasks of workers that died, on every store: the work of a dead worker resumes
long before its lease would have run out (the leases here are ``LEASE``, far longer than any
test waits).
"""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any

import pytest

import durable
from _support import eventually
from durable._stores import open_store
from durable.errors import ArgumentTypeError, InvalidArgumentError, ValidationError
from durable_server import Server

from ._env import Env, env, env_spec  # noqa: F401 - fixtures

LEASE = 600.0

_started: list[str] = []  # the workflow ids of the attempts that began


@durable.action(name="liveness_test_hold", inline=False)
async def hold(n: int) -> int:
    """With ``n == 1``, its first attempt never ends by itself (the test interrupts it)."""
    info = durable.action_info()
    _started.append(info.workflow_id)
    if n == 1 and info.attempt == 1:
        await asyncio.sleep(LEASE)
    return n


@durable.workflow(name="LivenessTestFlow")
async def flow(ctx: durable.Context, n: int) -> int:
    return await ctx.run(hold, n)


async def identities(client: durable.Client) -> list[str]:
    return [w.identity for w in await client.store.list_workers()]


async def test_a_worker_registers_and_unregisters(env: Env) -> None:
    client = await env.client()
    worker = durable.Worker(client, [flow], [hold], lease=LEASE)
    async with worker:
        await eventually(lambda: _has(client, worker.identity), what="the registration")
    assert worker.identity not in await identities(client)


async def test_a_cancelled_worker_releases_its_tasks(env: Env) -> None:
    client = await env.client()
    first = durable.Worker(client, [flow], [hold], lease=LEASE, poll_interval=0.02)
    running = asyncio.create_task(first.run())
    handle = await client.start(flow, 1, id=f"cancelled-{env.tenant}")
    await eventually(lambda: handle.workflow_id in _started, what="the action to run")
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    other = await env.client()
    await env.worker(other, [flow], [hold], lease=LEASE)
    if env.kind == "redis":
        await env.server()
    assert await handle.result(timeout=30) == 1


async def test_a_server_releases_a_dead_worker_s_tasks(env: Env) -> None:
    if env.kind == "memory":
        pytest.skip("a memory store's workers share its one process")
    client = await env.client()
    handle = await client.start(flow, 2, id="dead")
    dying = await open_store(env.url)
    try:  # a worker that claims the task, then dies (its lock goes with its connection)
        await dying.register_worker("ghost", host=socket.gethostname(), pid=os.getpid(),
                                    now=client.clock())
        [task] = await dying.claim_workflow_tasks(["LivenessTestFlow"], "ghost", lease=LEASE,
                                                  now=client.clock(), limit=1)
    finally:
        await dying.close()
    await env.server()
    await eventually(lambda: _gone(client, "ghost"), what="the server to release it")
    await env.worker(client, [flow], [hold], lease=LEASE)
    assert await handle.result(timeout=30) == 2


@pytest.mark.parametrize("bad, error", [(0, ValidationError), (-1.0, ValidationError),
                                        (float("nan"), ValidationError),
                                        ("5", ArgumentTypeError), (True, ArgumentTypeError)])
async def test_bad_liveness_timeouts_are_typed_errors(bad: Any, error: type[Exception]) -> None:
    async with durable.connect("memory://") as client:
        with pytest.raises(error):
            durable.Worker(client, [flow], [hold], liveness_timeout=bad)
        with pytest.raises(InvalidArgumentError):
            Server(client, liveness_timeout=0)


async def _has(client: durable.Client, identity: str) -> bool:
    return identity in await identities(client)


async def _gone(client: durable.Client, identity: str) -> bool:
    return identity not in await identities(client)
