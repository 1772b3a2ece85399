"""``handle.start_update``: an update handle once the workflow accepted the update, its
outcome later from ``update.result()``; rejections raise at the start. On every store."""

from __future__ import annotations

import asyncio

import pytest

import durable
from durable.errors import UpdateFailedError, UpdateRejectedError, ValidationError

from ._env import Env, env, env_spec  # noqa: F401 - fixtures


@durable.workflow(name="SUApprovals")
async def approvals(ctx: durable.Context) -> list[str]:
    approved: list[str] = []
    gate = asyncio.Event()

    def check(who: str) -> None:
        if not who:
            raise ValueError("someone must approve")

    async def approve(who: str) -> int:
        await gate.wait()  # the handler waits: accepted long before it completes
        if who == "mallory":
            raise PermissionError("not allowed")
        approved.append(who)
        return len(approved)

    ctx.on_update("approve", approve, validator=check)
    ctx.on_signal("open", lambda event: gate.set())
    await ctx.wait_condition(lambda: len(approved) >= 2)
    return approved


async def test_accepted_now_completed_later(env: Env) -> None:
    client = await env.start([approvals], [])
    handle = await client.start(approvals, id="su1")
    first = await handle.start_update("approve", "ann", idempotency_key="u-ann")
    assert (first.id, first.name) == ("u-ann", "approve")
    second = await handle.start_update("approve", "bob")
    bad = await handle.start_update("approve", "mallory")
    with pytest.raises(durable.errors.RequestTimeoutError):
        await first.result(timeout=0.3)  # accepted, but its handler still waits
    await handle.send("open")
    assert sorted([await first.result(timeout=20), await second.result(timeout=20)]) == [1, 2]
    with pytest.raises(UpdateFailedError, match="not allowed"):
        await bad.result(timeout=20)
    assert sorted(await handle.result(timeout=20)) == ["ann", "bob"]
    again = await handle.update("approve", "ann", idempotency_key="u-ann", timeout=20)
    assert again == await first.result(timeout=20)  # the same update, not a new one


async def test_wait_for_completed_and_rejections(env: Env) -> None:
    client = await env.start([approvals], [])
    handle = await client.start(approvals, id="su2")
    with pytest.raises(UpdateRejectedError, match="someone must approve"):
        await handle.start_update("approve", "")
    await handle.send("open")
    done = await handle.start_update("approve", "cy", wait_for="completed", timeout=20)
    assert await done.result(timeout=1) == 1
    with pytest.raises(ValidationError, match="wait_for"):
        await handle.start_update("approve", "dee", wait_for="soon")
