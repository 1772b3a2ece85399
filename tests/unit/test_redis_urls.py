"""Redis dispatch URLs: one Redis (``redis://``) or any node of a Redis Cluster
(``redis+cluster://``); malformed ones are refused when the dispatcher is made (no connection
is opened)."""

from __future__ import annotations

import pytest
from redis.asyncio.cluster import RedisCluster

from durable._dispatch import RedisDispatcher
from durable._dispatch._keys import alive, hash_tag, sticky_stream, workflow_stream
from durable._dispatch._redis_link import slot_groups
from durable._stores.memory import MemoryStore
from durable.errors import InvalidArgumentError


async def test_a_cluster_url_makes_a_cluster_client() -> None:
    dispatcher = RedisDispatcher(MemoryStore(), "redis+cluster://user:secret@127.0.0.1:7000")
    try:
        assert dispatcher.cluster and isinstance(dispatcher._redis, RedisCluster)  # pyright: ignore[reportPrivateUsage]
        assert "secret" not in repr(dispatcher)
    finally:
        await dispatcher.close()
    single = RedisDispatcher(MemoryStore(), "redis://127.0.0.1:6379/0")
    assert not single.cluster
    await single.close()


@pytest.mark.parametrize("url", ["redis+cluster://127.0.0.1:7000/3", "redis://127.0.0.1:x/0",
                                 "redis+cluster://127.0.0.1:x", "http://127.0.0.1:6379"])
def test_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidArgumentError, match="redis\\+cluster://host:6379"):
        RedisDispatcher(MemoryStore(), url)


def test_keys_that_travel_together_share_a_slot() -> None:
    for owner in ("w1", "host:1:{x}", "}{", ""):
        assert hash_tag(alive("p", owner)) == hash_tag(sticky_stream("p", owner, 0)) == \
            hash_tag(sticky_stream("p", owner, 15))
    assert hash_tag(workflow_stream("p", 3, "Flow")) == hash_tag(workflow_stream("p", 3)) == "3"
    streams = [workflow_stream("p", 0), workflow_stream("p", 1), workflow_stream("p", 0, "F"),
               sticky_stream("p", "w1", 0), sticky_stream("p", "w1", 1)]
    assert slot_groups(streams, cluster=False) == [streams]
    assert slot_groups(streams, cluster=True) == [[streams[0], streams[2]], [streams[1]],
                                                  [streams[3], streams[4]]]
