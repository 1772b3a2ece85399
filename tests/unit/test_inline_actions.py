"""Inline actions: first attempts run inside the workflow task and commit with it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

import durable
from durable._stores import WorkflowCommit, WorkflowTask
from durable._stores.memory import MemoryStore

attempts: list[tuple[str, int, str]] = []


@durable.action(timeout=0.1)
async def double(n: int) -> int:
    attempts.append(("double", durable.action_info().attempt, durable.action_info().idempotency_key))
    return 2 * n


@durable.action(timeout=0.1, retry=durable.Retry(attempts=3, initial=0.01))
async def flaky_once(n: int) -> int:
    info = durable.action_info()
    attempts.append(("flaky_once", info.attempt, info.idempotency_key))
    if info.attempt == 1:
        raise ConnectionError("first attempt fails")
    return n


@durable.action(inline=True)
async def slow(n: int) -> int:
    attempts.append(("slow", durable.action_info().attempt, durable.action_info().idempotency_key))
    await asyncio.sleep(0.3)
    return n


@durable.action
async def queued(n: int) -> int:
    return n


@durable.workflow
async def three_inline(ctx: durable.Context, n: int) -> int:
    for _ in range(3):
        n = await ctx.run(double, n)
    return n


@durable.workflow
async def mixed(ctx: durable.Context, n: int) -> list[int]:
    first = await ctx.run(flaky_once, n)
    fanned = await asyncio.gather(*(ctx.run(double, i) for i in range(5)), ctx.run(queued, 7))
    await ctx.sleep(0.01)
    return [first, *fanned, await ctx.run(slow, n)]


class CountingStore(MemoryStore):
    """The memory store, counting commits and the action tasks workers took: claimed, or
    created leased to them by a commit (eager dispatch)."""

    def __init__(self) -> None:
        super().__init__()
        self.commits = 0
        self.claimed_actions: list[str] = []

    async def commit_workflow_task(self, task: WorkflowTask, commit: WorkflowCommit) -> bool:
        self.commits += 1
        done = await super().commit_workflow_task(task, commit)
        if done:
            self.claimed_actions += [a.name for a in commit.actions if a.cmd in commit.leased]
        return done

    async def claim_action_tasks(self, *args: Any, **kwargs: Any) -> Any:
        tasks = await super().claim_action_tasks(*args, **kwargs)
        self.claimed_actions += [t.name for t in tasks]
        return tasks


@pytest.fixture
async def client() -> AsyncIterator[durable.Client]:
    attempts.clear()
    client = durable.Client(CountingStore())
    yield client
    await client.close()


async def test_short_actions_run_inline_and_commit_once(client: durable.Client) -> None:
    handle = await client.start(three_inline, 1, id="inline")
    async with durable.Worker(client, [three_inline], [double], poll_interval=0.01, lease=10):
        assert await handle.result(timeout=5) == 8
    store = client.store
    assert isinstance(store, CountingStore)
    assert store.commits == 1 and store.claimed_actions == []
    kinds = [type(e).__name__ for e in await handle.history()]
    assert kinds == ["WorkflowStarted"] + ["TaskCompleted", "ActionScheduled", "ActionCompleted"] * 3 \
        + ["TaskCompleted", "WorkflowCompleted"]


async def test_retries_queued_actions_and_slow_inline_attempts_fall_back_to_tasks(
        client: durable.Client) -> None:
    handle = await client.start(mixed, 3, id="mixed")
    async with durable.Worker(client, [mixed], [double, flaky_once, slow, queued],
                              poll_interval=0.01, lease=0.4):
        assert await handle.result(timeout=10) == [3, 0, 2, 4, 6, 8, 7, 3]
    store = client.store
    assert isinstance(store, CountingStore)
    # flaky_once's second attempt, `queued` (no timeout) and `slow` (over the budget) are tasks.
    assert sorted(store.claimed_actions) == ["flaky_once", "queued", "slow"]
    by_action: dict[str, list[tuple[int, str]]] = {}
    for name, attempt, key in attempts:
        by_action.setdefault(name, []).append((attempt, key))
    assert [a for a, _ in by_action["flaky_once"]] == [1, 2]
    assert len({k for _, k in by_action["flaky_once"]}) == 1
    assert len({k for _, k in by_action["slow"]}) == 1 and len(by_action["slow"]) == 2
    completions = [e for e in await handle.history() if type(e).__name__ == "ActionCompleted"]
    assert len(completions) == len({e.cmd for e in completions}) == 8


async def test_inline_and_queued_execution_write_the_same_history_shape(client: durable.Client) -> None:
    shapes = []
    for inline in (True, False):
        handle = await client.start(three_inline, 2, id=f"shape-{inline}")
        async with durable.Worker(client, [three_inline], [double], poll_interval=0.01,
                                  inline_actions=inline):
            assert await handle.result(timeout=5) == 16
        shapes.append([(type(e).__name__, getattr(e, "cmd", None)) for e in await handle.history()])
    assert shapes[0] == shapes[1]


@durable.action(timeout=2.0)  # inline under a 10 s lease, and roomy on a loaded machine
async def plus_one(n: int) -> int:
    return n + 1


@durable.workflow
async def long_inline(ctx: durable.Context, steps: int) -> int:
    n = 0
    for _ in range(steps):
        n = await ctx.run(plus_one, n)
    return n


async def test_a_workflow_longer_than_one_tasks_inline_rounds_keeps_going(
        client: durable.Client) -> None:
    from durable._worker._workflow_tasks import _INLINE_ROUNDS

    steps = 2 * _INLINE_ROUNDS + 50
    handle = await client.start(long_inline, steps, id="long-inline")
    await durable.Worker(client, [long_inline], [plus_one], lease=10).run_until_idle()
    assert await handle.result(timeout=5) == steps
    store = client.store
    assert isinstance(store, CountingStore)
    # each task's last round queues its action, whose completion starts the next task
    assert store.claimed_actions == ["plus_one", "plus_one"] and store.commits == 3


@durable.workflow
async def flaky_twice(ctx: durable.Context, n: int) -> int:
    return await ctx.run(flaky_once, n)


async def test_a_failed_inline_attempt_is_logged_like_a_queued_one(
        client: durable.Client, caplog: pytest.LogCaptureFixture) -> None:
    messages = {}
    for inline in (True, False):
        attempts.clear()
        caplog.clear()
        handle = await client.start(flaky_twice, 4, id=f"logged-{inline}")
        with caplog.at_level("WARNING", logger="durable.worker"):
            async with durable.Worker(client, [flaky_twice], [flaky_once], poll_interval=0.01,
                                      lease=10, inline_actions=inline):
                assert await handle.result(timeout=5) == 4
        messages[inline] = [r.getMessage() for r in caplog.records
                            if r.name == "durable.worker" and "attempt 1 failed" in r.getMessage()]
        assert [a for _, a, _ in attempts] == [1, 2]
    assert messages[True] == messages[False]
    assert len(messages[True]) == 1
    assert messages[True][0].startswith(
        "action flaky_once attempt 1 failed (ConnectionError: first attempt fails); retrying in")
