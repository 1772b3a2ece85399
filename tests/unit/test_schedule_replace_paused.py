"""Backfills, and replacing a paused schedule: replacing one keeps it paused and starts none of the runs that fell due while
it was paused, before or after it is unpaused (it used to start them all in one pass, and the
next ``env.sleep()`` then spun without end)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

import durable
from durable.errors import InvalidScheduleError
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


async def test_backfill_starts_each_due_time_in_the_range_once() -> None:
    async with Environment(workflows=[tick], start=1_800_000_000.0) as env:  # 08:00Z
        handle = await env.client.schedule(tick, "b", id="filled", cron="0 * * * *",
                                           paused=True)
        start = env.now() - timedelta(hours=5)  # 03:00Z .. 06:00Z: four due times
        count = await handle.backfill(start, start + timedelta(hours=3), overlap="allow_all")
        await env.wait_idle()
        again = await handle.backfill(start, start + timedelta(hours=3), overlap="allow_all")
        await env.wait_idle()
        d = await handle.describe()
        assert (count, again, d.runs, d.paused) == (4, 0, 4, True)  # the second started none
        assert sorted(r.workflow_id for r in d.recent_runs) == [
            f"filled-2027-01-15T0{h}:00:00Z" for h in (3, 4, 5, 6)]


async def test_backfill_refuses_bad_ranges() -> None:
    async with Environment(workflows=[tick], start=1_800_000_000.0) as env:
        handle = await env.client.schedule(tick, "b", id="bad", every=60.0)
        now = env.now()
        with pytest.raises(InvalidScheduleError, match="after end"):
            await handle.backfill(now, now - timedelta(hours=1))
        with pytest.raises(InvalidScheduleError, match="naive"):
            await handle.backfill(now.replace(tzinfo=None), now)
        with pytest.raises(InvalidScheduleError, match="more than 1000"):
            await handle.backfill(now - timedelta(days=2), now)
        with pytest.raises(InvalidScheduleError, match="epoch seconds"):
            await handle.backfill(float("nan"), now)
        assert (await handle.describe()).runs == 0
