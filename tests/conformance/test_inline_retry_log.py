"""An inline action's failed first attempt is logged like a queued one's (issue 15, item 12),
on every store."""

from __future__ import annotations

import pytest

import durable

attempts: list[int] = []


@durable.action(name="log_flaky", timeout=5.0, retry=durable.Retry(attempts=2, initial=0.01))
async def flaky(n: int) -> int:
    attempts.append(durable.action_info().attempt)
    if durable.action_info().attempt == 1:
        raise ConnectionError("first attempt fails")
    return n


@durable.workflow(name="LogFlaky")
async def once(ctx: durable.Context, n: int) -> int:
    return await ctx.run(flaky, n)


@pytest.mark.parametrize("inline", [True, False])
async def test_a_retried_attempt_is_logged_inline_or_queued(
        store_url: str, inline: bool, caplog: pytest.LogCaptureFixture) -> None:
    attempts.clear()
    async with durable.connect(store_url, tenant=f"log-{inline}") as client:
        handle = await client.start(once, 3, id="log-1")
        with caplog.at_level("WARNING", logger="durable.worker"):
            async with durable.Worker(client, [once], [flaky], poll_interval=0.01,
                                      inline_actions=inline):
                assert await handle.result(timeout=20) == 3
    assert attempts == [1, 2]
    logged = [r.getMessage() for r in caplog.records if r.name == "durable.worker"]
    assert len([m for m in logged if "attempt 1 failed" in m]) == 1, logged
    assert any(m.startswith("action log_flaky attempt 1 failed (ConnectionError: first attempt "
                            "fails); retrying in") for m in logged)
