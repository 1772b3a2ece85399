"""One end-to-end environment per store: clients, workers and (with Redis) a server.

``env`` is parametrized over ``memory``, ``sqlite``, ``postgres`` (in-process dispatch) and
``redis`` (PostgreSQL + Redis Streams dispatch + a ``durable_server.Server`` that fires timers
and re-dispatches). Everything it opens is closed at the end of the test. Import the fixture
into a test module with ``from ._env import env``.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import durable
from durable._stores.memory import MemoryStore

KINDS = ["memory", "sqlite", "postgres", "redis"]
LEASE = 0.6  # short, so that heartbeats (every lease / 3) tell cancelled actions quickly


@dataclass
class Env:
    """Where one test's executions live, and how to reach them from several "processes"."""

    kind: str
    url: str
    redis_url: str | None = None
    prefix: str = ""
    tenant: str = field(default_factory=lambda: f"t-{uuid.uuid4().hex[:8]}")
    _stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)
    _memory: MemoryStore | None = None

    async def client(self, tenants: Any = None) -> durable.Client:
        """A new client (with its own store connection, except on the memory store) for the
        test's tenant, or for ``tenants`` (its scope)."""
        if self.kind == "memory":
            self._memory = self._memory or MemoryStore()
            client = durable.Client(self._memory, tenant=self.tenant, tenants=tenants,
                                    poll_interval=0.02)
        else:
            client = await durable.connect(self.url, tenant=self.tenant, tenants=tenants,
                                           redis_url=self.redis_url, prefix=self.prefix)
            client.poll_interval = 0.02
            self._stack.push_async_callback(client.close)
        return client

    async def worker(self, client: durable.Client, workflows: list[Any], actions: list[Any],
                     **options: Any) -> durable.Worker:
        """A worker running in the background until the end of the test."""
        options = {"lease": LEASE, "poll_interval": 0.02, **options}
        return await self._stack.enter_async_context(
            durable.Worker(client, workflows, actions, **options))

    async def start(self, workflows: list[Any], actions: list[Any],
                    **options: Any) -> durable.Client:
        """A client, a worker on it, and (Redis dispatch) a server: a running system."""
        client = await self.client()
        await self.worker(client, workflows, actions, **options)
        if self.kind == "redis":
            await self.server()
        return client

    async def server(self) -> Any:
        from durable_server import Server

        client = await self.client()
        server = Server(client, interval=0.02, redispatch_after=0.5, port=0)
        return await self._stack.enter_async_context(server)

    async def close(self) -> None:
        await self._stack.aclose()


@pytest.fixture(params=KINDS)
def env_spec(request: pytest.FixtureRequest, tmp_path: Path) -> Env:
    """The environment's addresses; sync, so that it may pull in the async server fixtures."""
    kind = request.param
    if kind == "memory":
        return Env(kind, "memory://")
    if kind == "sqlite":
        return Env(kind, f"sqlite:///{tmp_path}/env.db")
    url = str(request.getfixturevalue("pg_migrated_database"))
    if kind == "postgres":
        return Env(kind, url)
    return Env(kind, url, request.getfixturevalue("redis_url"),
               request.getfixturevalue("redis_prefix"))


@pytest.fixture
async def env(env_spec: Env) -> AsyncIterator[Env]:
    try:
        yield env_spec
    finally:
        await env_spec.close()
