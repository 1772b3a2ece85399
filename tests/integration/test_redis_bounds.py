"""Redis stays bounded: sticky routes go when their execution ends or its worker dies, a forged
route cannot hold an execution, and streams keep only what is still to do.

Each test runs against a real Redis under its own ``redis_prefix``, with the memory store as
the source of truth.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
import pytest
import redis.asyncio as aioredis

import durable
from _support import eventually, open_redis
from durable import Client
from durable._definitions import workflow_definition
from durable._dispatch import ClaimSpec, RedisDispatcher, _keys
from durable._history import WorkflowStarted
from durable._stores import workflow_ref
from durable._stores.memory import MemoryStore
from durable.errors import WorkflowCancelledError
from durable_server import Server

pytestmark = pytest.mark.integration


@pytest.fixture
def redis_url(any_redis_url: str) -> str:
    """Each test runs on single Redis and on the Redis Cluster."""
    return any_redis_url


@durable.action(name="redis_bounds_step")
async def step(n: int) -> int:
    return n + 1


@durable.workflow(name="RedisBoundsFlow")
async def flow(ctx: durable.Context, n: int) -> int:
    return await ctx.run(step, await ctx.run(step, n))


@durable.workflow(name="RedisBoundsWaits")
async def waits(ctx: durable.Context) -> int:
    ctx.set_state("waiting")
    await ctx.wait_for("Go")
    return await ctx.run(step, 1)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = open_redis(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def clients(redis_url: str, redis_prefix: str) -> AsyncIterator[Callable[..., Client]]:
    """Makes clients on one memory store that dispatch through Redis."""
    store, made = MemoryStore(), list[Client]()

    def make(**options: Any) -> Client:
        dispatcher = RedisDispatcher(store, redis_url, prefix=redis_prefix, **options)
        made.append(Client(store, dispatcher=dispatcher, poll_interval=0.02))
        return made[-1]

    yield make
    for client in made:
        await client.close()


def worker(client: Client, **options: Any) -> durable.Worker:
    options.setdefault("lease", 0.5)
    return durable.Worker(client, [flow, waits], [step], poll_interval=0.02, **options)


async def routes(redis: aioredis.Redis, prefix: str) -> list[str]:
    return [k.decode() async for k in redis.scan_iter(match=f"{prefix}route:*")]


def route_key(prefix: str, workflow_id: str) -> str:
    return _keys.route(prefix.rstrip(":"), "default", workflow_id)


async def waiting(handle: durable.WorkflowHandle[Any]) -> bool:
    return (await handle.describe()).state == "waiting"


async def test_routes_are_removed_when_executions_end(
        clients: Callable[..., Client], redis: aioredis.Redis, redis_prefix: str) -> None:
    client = clients()
    async with worker(client), worker(clients()):
        handles = [await client.start(waits, id=f"end-{i}") for i in range(20)]
        for handle in handles:
            await eventually(lambda h=handle: waiting(h), what="the workflow to wait")
        assert len(await routes(redis, redis_prefix)) == 20  # each cached somewhere
        for handle in handles:
            await handle.send("Go")
        assert await asyncio.gather(*(h.result(timeout=10) for h in handles)) == [2] * 20
        await eventually(lambda: _no_routes(redis, redis_prefix), what="the routes to go")


async def test_route_is_removed_by_a_worker_that_did_not_cache_the_execution(
        clients: Callable[..., Client], redis: aioredis.Redis, redis_prefix: str) -> None:
    client = clients()
    handle = await client.start(flow, 1, id="elsewhere")
    key = route_key(redis_prefix, "elsewhere")
    await redis.set(key, "gone-worker")  # a worker that cached it and died (no alive key)
    async with worker(client):
        assert await handle.result(timeout=10) == 3
    assert await redis.exists(key) == 0


async def _no_routes(redis: aioredis.Redis, prefix: str) -> bool:
    return await routes(redis, prefix) == []


async def test_route_is_removed_when_a_client_cancels(
        clients: Callable[..., Client], redis: aioredis.Redis, redis_prefix: str) -> None:
    client = clients()
    async with worker(client):
        handle = await client.start(waits, id="cancelled")
        await eventually(lambda: waiting(handle), what="the workflow to wait")
        assert await routes(redis, redis_prefix) == [route_key(redis_prefix, "cancelled")]
        await handle.cancel()
        with pytest.raises(WorkflowCancelledError):
            await handle.result(timeout=10)
        # removed once the end is committed, which the result may be told of first
        await eventually(lambda: _no_routes(redis, redis_prefix), what="the route to go")


async def test_evicted_executions_lose_their_routes(
        clients: Callable[..., Client], redis: aioredis.Redis, redis_prefix: str) -> None:
    client = clients()
    async with worker(client, max_cached=2):
        handles = [await client.start(waits, id=f"evict-{i}") for i in range(5)]
        for handle in handles:
            await eventually(lambda h=handle: waiting(h), what="the workflow to wait")
        assert len(await routes(redis, redis_prefix)) == 2  # the two it still caches


async def test_a_dead_workers_routes_expire_and_are_ignored(
        clients: Callable[..., Client], redis: aioredis.Redis, redis_prefix: str) -> None:
    client = clients(route_ttl=1.0)
    dying = worker(clients(route_ttl=1.0))
    async with worker(client):
        async with dying:
            handle = await client.start(waits, id="orphaned")
            await eventually(lambda: waiting(handle), what="the workflow to wait")
            key = route_key(redis_prefix, "orphaned")
            assert 0 < await redis.pttl(key) <= 1000  # it expires unless renewed
        await eventually(lambda: _gone(redis, key), what="the route to expire")
        await handle.send("Go")
        assert await handle.result(timeout=10) == 2


async def _gone(redis: aioredis.Redis, key: str) -> bool:
    return not await redis.exists(key)


async def test_a_forged_route_to_a_fake_live_worker_holds_an_execution_only_until_the_outbox(
        clients: Callable[..., Client], redis: aioredis.Redis, redis_prefix: str) -> None:
    client, starter = clients(), clients()  # the starter has no worker: no eager start
    prefix = redis_prefix.rstrip(":")
    await redis.set(_keys.alive(prefix, "fake"), 1)  # alive for ever, and never claims
    async with worker(client), Server(client, port=0, interval=0.02,
                                      redispatch_after=0.5) as server:
        await redis.set(route_key(redis_prefix, "forged-start"), "fake")
        first = await starter.start(flow, 1, id="forged-start")  # new: no route is looked up
        assert await first.result(timeout=10) == 3
        second = await starter.start(waits, id="forged-wait")
        await eventually(lambda: waiting(second), what="the workflow to wait")
        await redis.set(route_key(redis_prefix, "forged-wait"), "fake")  # while it is cached
        await second.send("Go")
        assert await second.result(timeout=10) == 2
        assert server.metrics.registry.get_sample_value("durable_tasks_redispatched_total")
    swallowed = _keys.sticky_stream(prefix, "fake", _keys.partition("default", 16))
    assert await redis.xlen(swallowed) >= 1  # the hints it swallowed
    assert await routes(redis, redis_prefix) == []


async def test_streams_keep_only_unfinished_hints_and_dead_consumers_go(
        clients: Callable[..., Client], redis: aioredis.Redis, redis_prefix: str) -> None:
    client = clients(partitions=1)
    prefix = redis_prefix.rstrip(":")
    dead = ClaimSpec("killed-worker", frozenset({"RedisBoundsFlow"}), frozenset(), 0.5)
    await client.dispatcher.receive(dead, limit=1, timeout=0)  # reads once, then is killed
    async with worker(client, lease=0.25):
        handles = [await client.start(flow, i, id=f"trim-{i}") for i in range(60)]
        assert [await h.result(timeout=10) for h in handles] == [i + 2 for i in range(60)]
        workflow_stream = _keys.workflow_stream(prefix, 0)

        async def tidy() -> bool:
            lengths = [await redis.xlen(s) for s in (
                workflow_stream, _keys.action_stream(prefix, "redis_bounds_step", 0))]
            consumers = {c["name"] for c in await redis.xinfo_consumers(workflow_stream,
                                                                         _keys.GROUP)}
            return max(lengths) <= 1 and b"killed-worker" not in consumers

        await eventually(tidy, what="the streams to be trimmed and the dead consumer removed")


async def test_hints_left_in_the_old_key_layout_lose_no_work(
        clients: Callable[..., Client], redis: aioredis.Redis, redis_prefix: str) -> None:
    """Before the cluster layout a worker's keys were ``<prefix>:sticky:<worker>`` and
    ``<prefix>:alive:<worker>``: a hint left there is read by no worker now, and the server's
    outbox announces its task again."""
    client, prefix = clients(), redis_prefix.rstrip(":")
    handle = await client.start(flow, 1, id="old-layout")
    for key in [k async for k in redis.scan_iter(match=f"{redis_prefix}*")]:
        await redis.delete(key)  # the start's hint, in the new layout
    await redis.set(f"{prefix}:alive:old-worker", 1)
    await redis.xadd(f"{prefix}:sticky:old-worker",
                     {_keys.HINT_FIELD: msgspec.msgpack.encode(workflow_ref("default",
                                                                           "old-layout"))})
    async with worker(client), Server(client, port=0, interval=0.02, redispatch_after=0.5):
        assert await handle.result(timeout=10) == 3
    assert await redis.xlen(f"{prefix}:sticky:old-worker") == 1  # left alone: it expires


async def test_a_dead_workers_sticky_hints_are_published_again(
        clients: Callable[..., Client], redis: aioredis.Redis, redis_prefix: str) -> None:
    client = clients()
    workflows = frozenset({"RedisBoundsFlow"})
    dead = ClaimSpec("dead-worker", workflows, frozenset(), 30.0)
    assert await client.dispatcher.receive(dead, limit=1, timeout=0) == []  # now alive
    defn = workflow_definition(flow)
    for i in range(3):
        await client.dispatcher.stick("dead-worker", "default", f"routed-{i}", keep=True)
        started = WorkflowStarted(0, 0.0, defn.name, defn.version, f"routed-{i}", f"run-{i}",
                                  "default", [i])
        await client.store.create_execution(started, now=client.clock())
        await client.dispatcher.publish([workflow_ref("default", f"routed-{i}", defn.name)])
        # (a task of an execution the dead worker caches: to its sticky stream)
    [held] = await client.dispatcher.receive(dead, limit=1, timeout=0)  # read 3, claimed 1
    other = ClaimSpec("other-worker", workflows, frozenset(), 30.0)
    assert await client.dispatcher.receive(other, limit=10, timeout=0) == []  # not its stream
    await client.dispatcher.forget_worker("dead-worker")  # it died holding them
    assert not await redis.exists(_keys.alive(redis_prefix.rstrip(":"), "dead-worker"))
    claims = await client.dispatcher.receive(other, limit=10, timeout=0)
    assert sorted(c.task.workflow_id for c in claims + [held]) == [
        "routed-0", "routed-1", "routed-2"]  # the held one's lease holds: not claimed twice
