"""Schedules under ``durable.testing.Environment``: virtual time stops at each due time, so
runs start when they are due and the overlap policy sees the earlier ones end."""

from __future__ import annotations

from datetime import timedelta

import durable
from durable.testing import Environment


@durable.workflow(name="SkipTestHalfHour")
async def half_hour(ctx: durable.Context) -> str:
    await ctx.sleep(timedelta(minutes=30))
    return f"{ctx.now():%H:%M}"


async def test_hourly_runs_start_on_time_in_virtual_time() -> None:
    async with Environment(workflows=[half_hour], start=1_800_000_000.0) as env:  # 08:00Z
        handle = await env.client.schedule(half_hour, id="hourly", cron="0 * * * *")
        await env.sleep(timedelta(hours=3, minutes=45))
        d = await handle.describe()
        assert (d.runs, d.skipped, d.missed) == (3, 0, 0)  # each ended before the next was due
        results = [await env.client.get_handle(r.workflow_id).result() for r in d.recent_runs]
        assert results == ["09:30", "10:30", "11:30"]
        assert [r.started_at - r.due for r in d.recent_runs] == [0.0, 0.0, 0.0]
