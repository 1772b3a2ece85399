"""Queries and updates with Redis Streams dispatch: a request reaches the worker that caches
the execution (sticky execution) while it is alive, or any worker once it is gone; updates are
applied once however many workers and callers there are."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

import durable
from durable import Client
from durable._dispatch import RedisDispatcher
from durable._history import UpdateAccepted
from durable._stores.memory import MemoryStore

pytestmark = pytest.mark.integration


@pytest.fixture
def redis_url(any_redis_url: str) -> str:
    """Each test runs on single Redis and on the Redis Cluster."""
    return any_redis_url

starts: Counter[str] = Counter()  # workflow id -> times its coroutine started (each replay too)


@durable.workflow(name="RQTally")
async def tally(ctx: durable.Context) -> int:
    starts[ctx.info.workflow_id] += 1
    count = 0

    ctx.on_query("count", lambda: count)

    @ctx.on_update("bump")
    def bump(by: int) -> int:
        nonlocal count
        count += by
        return count

    await ctx.wait_for("stop")
    return count


@pytest.fixture
async def clients(redis_url: str, redis_prefix: str) -> AsyncIterator[Callable[..., Client]]:
    """Clients on one memory store that dispatch through Redis (as processes would)."""
    made: list[Client] = []
    store = MemoryStore()

    def make() -> Client:
        made.append(Client(store, dispatcher=RedisDispatcher(store, redis_url,
                                                             prefix=redis_prefix),
                           poll_interval=0.02))
        return made[-1]

    starts.clear()
    yield make
    for client in made:
        await client.close()


def worker(client: Client) -> durable.Worker:
    return durable.Worker(client, [tally], lease=1, poll_interval=0.05)


async def test_requests_reach_the_worker_that_caches_the_execution(
        clients: Callable[..., Client]) -> None:
    one, two, caller = clients(), clients(), clients()
    async with worker(one) as first, worker(two) as second:
        handle = await caller.start(tally, id="t1")
        assert await handle.query("count", timeout=10) == 0
        for n in range(1, 6):
            assert await handle.update("bump", 1, timeout=10) == n
            assert await handle.query("count", timeout=10) == n
        assert starts["t1"] == 1  # every request ran on the one live instance: no replay
        holders = [w for w in (first, second) if len(w.cache)]
        assert len(holders) == 1


async def test_requests_go_to_another_worker_once_the_caching_one_is_gone(
        clients: Callable[..., Client]) -> None:
    from durable_server import Server

    one, two, caller = clients(), clients(), clients()
    handle = await caller.start(tally, id="t2")
    async with worker(one):
        assert await handle.update("bump", 2, timeout=10) == 2
    assert starts["t2"] == 1
    # The first worker stopped. Until its alive key lapses (a lease) hints still go to its
    # stream; the server's outbox announces the task again, to the shared streams by then.
    async with Server(clients(), port=0, interval=0.05, redispatch_after=0.5), worker(two):
        assert await handle.query("count", timeout=20) == 2
        assert await handle.update("bump", 3, timeout=10) == 5
    assert starts["t2"] == 2  # rebuilt once from history on the second worker


async def test_concurrent_updates_with_one_key_apply_once_across_workers(
        clients: Callable[..., Client]) -> None:
    one, two = clients(), clients()
    callers = [clients() for _ in range(3)]
    async with worker(one), worker(two):
        handle = await callers[0].start(tally, id="t3")
        handles = [c.get_handle("t3") for c in callers]
        results = await asyncio.gather(*(h.update("bump", 7, idempotency_key="once", timeout=10)
                                         for h in handles * 2))
        assert results == [7] * 6
        assert await handle.query("count", timeout=10) == 7
        history = await handle.history()
        assert sum(isinstance(e, UpdateAccepted) for e in history) == 1
        await handle.send("stop")
        assert await handle.result(timeout=10) == 7


async def test_queries_and_updates_on_postgres_with_redis(pg_database: str, redis_url: str,
                                                          redis_prefix: str) -> None:
    starts.clear()
    options: dict[str, Any] = {"redis_url": redis_url, "prefix": redis_prefix}
    async with durable.connect(pg_database, **options) as workers_client, \
            durable.connect(pg_database, **options) as caller:
        caller.poll_interval = 0.02
        async with worker(workers_client):
            handle = await caller.start(tally, id="pg")
            assert await handle.update("bump", 4, idempotency_key="k", timeout=10) == 4
            assert await handle.update("bump", 4, idempotency_key="k", timeout=10) == 4
            assert await handle.query("count", timeout=10) == 4
            await handle.send("stop")
            assert await handle.result(timeout=10) == 4
            assert await handle.query("count", timeout=10) == 4  # from the final state
