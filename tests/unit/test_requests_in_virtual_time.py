"""Queries and updates under ``durable.testing.Environment``: an update whose handler sleeps
lets virtual time pass; queries are answered at the current virtual instant."""

from __future__ import annotations

from datetime import timedelta

import durable
from durable.testing import Environment


@durable.workflow(name="VTBooking")
async def booking(ctx: durable.Context) -> str:
    holds: list[str] = []
    ctx.on_query("holds", lambda: list(holds))

    @ctx.on_update("hold")
    async def hold(seat: str) -> str:
        await ctx.sleep(timedelta(hours=2))  # e.g. wait for a payment window to pass
        holds.append(seat)
        return f"{seat} held at {ctx.now().isoformat()}"

    await ctx.wait_for("done")
    return ",".join(holds)


async def test_an_update_that_sleeps_skips_virtual_time() -> None:
    async with Environment(workflows=[booking]) as env:
        start = env.now()
        handle = await env.client.start(booking, id="b1")
        assert await handle.query("holds") == []
        answer = await handle.update("hold", "12A", idempotency_key="12A")
        assert env.now() - start == timedelta(hours=2)
        assert answer == f"12A held at {(start + timedelta(hours=2)).isoformat()}"
        assert await handle.query("holds") == ["12A"]
        await handle.send("done")
        assert await handle.result() == "12A"
