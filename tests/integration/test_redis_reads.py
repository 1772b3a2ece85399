"""``StreamReads``: a dispatcher's XREADGROUP of many streams, encoded once, on real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from _support import open_redis
from durable._dispatch._hints import hints_of
from durable._dispatch._reads import StreamReads
from durable._dispatch._redis_link import connect

GROUP = "g"


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    made = connect(redis_url, 5.0, 1.0)  # the dispatcher's pool and retry
    assert isinstance(made, aioredis.Redis)
    try:
        yield made
    finally:
        await made.aclose()


async def _streams(client: aioredis.Redis, prefix: str, count: int) -> list[str]:
    streams = [f"{prefix}s{i}" for i in range(count)]
    for stream in streams:
        await client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    return streams


async def test_a_read_gives_what_redis_pys_xreadgroup_gives(
        client: aioredis.Redis, redis_prefix: str) -> None:
    streams = await _streams(client, redis_prefix, 40)
    for i in (3, 17, 39):
        await client.xadd(streams[i], {b"r": b"entry %d" % i})
        await client.xadd(streams[i], {b"r": b"more %d" % i})
    reads = StreamReads(client, GROUP)
    got = await reads.read("me", streams, 1, None)  # one entry of each stream at most
    assert [(s, [f for _, f in entries]) for s, entries in got] == [
        (streams[i].encode(), [{b"r": b"entry %d" % i}]) for i in (3, 17, 39)]
    # the rest goes to another consumer through redis-py's own command: the same group
    other = await client.xreadgroup(GROUP, "other", dict.fromkeys(streams, ">"), count=5)
    assert [s for s, _ in other] == [streams[i].encode() for i in (3, 17, 39)]
    assert await reads.read("me", streams, 5, None) == []
    assert len(hints_of(got)) == 3


async def test_a_blocking_read_wakes_for_an_entry_added_while_it_waits(
        client: aioredis.Redis, redis_prefix: str) -> None:
    streams = await _streams(client, redis_prefix, 20)
    reads = StreamReads(client, GROUP)
    read = asyncio.create_task(reads.read("me", streams, 10, 5_000))
    await asyncio.sleep(0.1)
    assert not read.done()
    await client.xadd(streams[11], {b"r": b"late"})
    got = await asyncio.wait_for(read, 2)
    assert [(s, [f for _, f in e]) for s, e in got] == [(streams[11].encode(), [{b"r": b"late"}])]


async def test_a_read_after_redis_closed_the_pools_connection_reconnects(
        client: aioredis.Redis, redis_url: str, redis_prefix: str) -> None:
    streams = await _streams(client, redis_prefix, 5)
    reads = StreamReads(client, GROUP)
    assert await reads.read("me", streams, 1, None) == []  # its connection is in the pool now
    pooled = await client.client_id()  # the pool's one connection, taken and put back
    admin = open_redis(redis_url)
    try:  # as a Redis restart does, to this client's connection only: the server is shared
        assert await admin.client_kill_filter(_id=pooled) == 1
    finally:
        await admin.aclose()
    await client.xadd(streams[2], {b"r": b"after"})
    got = await reads.read("me", streams, 1, None)
    assert [s for s, _ in got] == [streams[2].encode()]


async def test_a_read_of_a_stream_without_the_group_raises_nogroup(
        client: aioredis.Redis, redis_prefix: str) -> None:
    reads = StreamReads(client, GROUP)
    with pytest.raises(aioredis.ResponseError, match="NOGROUP"):
        await reads.read("me", [f"{redis_prefix}missing"], 1, None)
