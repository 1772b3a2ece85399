"""Replacing a paused schedule keeps it paused and starts none of the runs that fell due while
it was paused, before or after it is unpaused (it used to start them all in one pass, and the
next ``env.sleep()`` then spun without end)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import durable
from durable.testing import Environment


@durable.workflow(name="ReplacePausedTick")
async def tick(ctx: durable.Context, label: str) -> str:
    return label


async def test_replace_keeps_a_paused_schedule_paused_and_catches_nothing_up() -> None:
    async with Environment(workflows=[tick], start=1_800_000_000.0) as env:  # 08:00Z
        handle = await env.client.schedule(tick, "v1", id="ticks", cron="0 * * * *")
        await handle.pause()
        await env.sleep(timedelta(hours=4, minutes=30))  # four due times pass while paused
        await env.client.schedule(tick, "v2", id="ticks", cron="0 * * * *", replace=True)
        await asyncio.wait_for(env.sleep(timedelta(minutes=10)), timeout=30)
        paused = await handle.describe()
        assert paused.paused and paused.runs == 0
        await handle.unpause()
        await asyncio.wait_for(env.sleep(timedelta(hours=1)), timeout=30)  # 13:40 -> 14:40
        d = await handle.describe()
        assert (d.runs, d.missed) == (1, 0)  # 14:00 only: nothing due while paused
        assert [await env.client.get_handle(r.workflow_id).result() for r in d.recent_runs] \
            == ["v2"]
