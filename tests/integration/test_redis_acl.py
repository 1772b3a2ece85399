"""The README's minimal Redis ACLs: a client, a worker and a server, each as a Redis user limited
to durable's key prefix and the commands its role uses, run a workflow with an action and a
timer; the users cannot touch keys outside the prefix. (Users are made and deleted here, on
every node of the Redis Cluster in its run.)
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoPermissionError

import durable
from _support import open_redis

# The ACLs of the README ("Tenants and security"), with <prefix> filled in.
PUBLISH = "+evalsha +script|load +script|exists +xadd +exists +mget +get +del"
CONSUME = (f"{PUBLISH} +set +expire +xreadgroup +xack +xautoclaim +xrange +xpending "
           "+xgroup|create +xgroup|delconsumer +xinfo|groups +xinfo|consumers +xtrim")
ROLES = {"client": PUBLISH, "server": PUBLISH, "worker": CONSUME}
CLUSTER = "+cluster|slots +command"  # every role, on a Redis Cluster: the client learns its nodes


@pytest.fixture
def redis_url(any_redis_url: str) -> str:
    return any_redis_url


@durable.action
async def acl_double(n: int) -> int:
    return 2 * n


@durable.workflow(name="AclFlow")
async def acl_flow(ctx: durable.Context, n: int) -> int:
    doubled = await ctx.run(acl_double, n)
    await ctx.sleep(0.05)  # fired by the server
    event = await ctx.wait_for("Go")
    return doubled + int(event.payload)


@pytest.fixture
async def acl_urls(redis_url: str, redis_prefix: str) -> AsyncIterator[dict[str, str]]:
    """A Redis URL per role, each for a user with that role's ACL; the users are deleted after."""
    admin = open_redis(redis_url)
    cluster = isinstance(admin, RedisCluster)
    nodes = {"target_nodes": RedisCluster.ALL_NODES} if cluster else {}
    users, urls = [], {}
    parts = urlsplit(redis_url)
    for role, commands in ROLES.items():
        user, password = f"durable-{role}-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
        commands += f" {CLUSTER}" if cluster else ""
        await admin.execute_command("ACL", "SETUSER", user, "reset", "on", f">{password}",
                                    f"~{redis_prefix.rstrip(':')}:*", "resetchannels",
                                    *commands.split(), **nodes)
        users.append(user)
        host = parts.netloc.rpartition("@")[2]
        urls[role] = urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))
    try:
        yield urls
    finally:
        await admin.execute_command("ACL", "DELUSER", *users, **nodes)
        await admin.aclose()


async def test_each_role_runs_with_its_minimal_acl(pg_database: str, redis_prefix: str,
                                                   acl_urls: dict[str, str],
                                                   caplog: pytest.LogCaptureFixture) -> None:
    from durable_server import Server

    caplog.set_level(logging.DEBUG)

    def connect(role: str) -> durable.connect:
        return durable.connect(pg_database, redis_url=acl_urls[role], prefix=redis_prefix)

    async with connect("worker") as for_worker, connect("server") as for_server, \
            connect("client") as client:
        worker = durable.Worker(for_worker, [acl_flow], [acl_double], poll_interval=0.02)
        async with worker, Server(for_server, port=0, interval=0.02, redispatch_after=0.5):
            handle = await client.start(acl_flow, 20, id="acl-1")
            await handle.send("Go", 2)
            assert await handle.result(timeout=30) == 42
    assert "permission" not in caplog.text.lower()  # no refused command, even a logged one
    outside = open_redis(acl_urls["worker"])
    try:
        with pytest.raises(NoPermissionError):
            await outside.set("not-durable:key", 1)
        with pytest.raises(NoPermissionError):
            await outside.execute_command("FLUSHALL")
    finally:
        await outside.aclose()
