"""Chaos on the production backend: real PostgreSQL, real Redis, worker and server processes.

3 worker processes and 2 servers run 200 workflows that mix actions, parallel actions, timers
and waits for events, while the test SIGKILLs a random worker about every second, SIGKILLs a
server once, flushes Redis once and restarts PostgreSQL once. Afterwards every workflow has
its expected result and every history checks out.

The test starts its own throwaway PostgreSQL and Redis (from the same wheels scripts/test
uses), because it restarts and flushes them.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import random
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import pytest

import durable
from durable.errors import StoreUnavailableError

from . import _flows
from ._checks import check_history
from ._procs import ROOT, WorkerProc, WorkerProcs, eventually, make_procs

pytestmark = [pytest.mark.faults, pytest.mark.integration]

WORKFLOWS = int(os.environ.get("DURABLE_CHAOS_WORKFLOWS", "200"))
PREFIX = "chaos"
SCHEDULE_TICKS = 8  # seconds of scheduled faults; events are sent over that whole window
T = TypeVar("T")


def _with_servers() -> ModuleType:
    spec = importlib.util.spec_from_file_location("with_servers", ROOT / "scripts" / "with_servers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Services:
    """A throwaway PostgreSQL and Redis that this test may restart and flush."""

    def __init__(self) -> None:
        servers = _with_servers()
        # Not under pytest's tmp_path: PostgreSQL runs as `nobody` under root, and must reach it.
        self.root = Path(tempfile.mkdtemp(prefix="durable-chaos-"))
        self.root.chmod(0o755)
        for name in ("pg", "redis"):
            (self.root / name).mkdir()
        self.pg = servers.Postgres(self.root / "pg")
        self.redis = servers.Redis(self.root / "redis")
        self.pg_url = ""
        self.redis_url = ""

    def start(self) -> None:
        self.pg_url = self.pg.start()
        self.redis_url = self.redis.start()

    def stop(self) -> None:
        try:
            self.redis.stop()
            self.pg.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def services() -> Iterator[Services]:
    services = Services()
    try:
        services.start()
        yield services
    finally:
        services.stop()


async def retrying(call: Callable[[], Awaitable[T]], what: str) -> T:
    """What a client does while PostgreSQL restarts: try again with backoff."""
    for attempt in range(100):
        try:
            return await call()
        except StoreUnavailableError:
            await asyncio.sleep(min(0.05 * 2 ** attempt, 1.0))
    raise AssertionError(f"{what}: the store stayed unavailable")


class Chaos:
    """Kills and restarts things on a schedule while the workflows run."""

    def __init__(self, procs: WorkerProcs, services: Services, url: str) -> None:
        self.procs = procs
        self.services = services
        self.url = url
        self.workers: list[WorkerProc] = []
        self.servers: list[WorkerProc] = []
        self.log: list[str] = []
        self.started = 0

    def start_worker(self) -> None:
        self.started += 1
        self.workers.append(self.procs.start(
            f"worker-{self.started}", concurrency=50,
            extra=["--redis", self.services.redis_url, "--prefix", PREFIX]))

    def start_server(self, name: str) -> None:
        self.servers.append(self.procs.start_module(
            name, "durable._cli", "server", "--db", self.url, "--redis", self.services.redis_url,
            "--prefix", PREFIX, "--port", "0", "--interval", "0.05", "--redispatch-after", "1"))

    def kill(self, proc: WorkerProc) -> None:
        self.procs.kill(proc)
        self.log.append(f"{time.strftime('%X')} SIGKILL {proc.name}")

    async def run(self, until: asyncio.Event) -> None:
        """Every second kill a worker; kill a server, flush Redis, restart PostgreSQL once each;
        go on until ``until`` is set, but at least through that schedule."""
        rng = random.Random(7)
        tick = 0
        while tick < SCHEDULE_TICKS or not until.is_set():
            await asyncio.sleep(1.0)
            tick += 1
            live = [w for w in self.workers if not w.killed]
            self.kill(rng.choice(live))
            self.start_worker()
            if tick == 2:
                self.kill(self.servers[0])
            if tick == 4:
                await self._flush_redis()
            if tick == 6:
                await asyncio.to_thread(self.services.pg.restart)
                self.log.append(f"{time.strftime('%X')} restarted PostgreSQL")
            if tick == 8:
                self.start_server("server-3")

    async def _flush_redis(self) -> None:
        import redis.asyncio as aioredis

        connection = aioredis.from_url(self.services.redis_url)
        try:
            await connection.flushall()
        finally:
            await connection.aclose()
        self.log.append(f"{time.strftime('%X')} FLUSHALL")


@pytest.fixture
async def chaos_client(services: Services) -> AsyncIterator[durable.Client]:
    async with durable.connect(services.pg_url, redis_url=services.redis_url,
                               prefix=PREFIX) as client:  # type: ignore[call-arg]
        client.poll_interval = 0.05
        yield client


async def test_chaos_loses_nothing_and_duplicates_nothing(tmp_path: Path, services: Services,
                                                        chaos_client: durable.Client) -> None:
    client = chaos_client
    procs = make_procs(tmp_path, services.pg_url)
    chaos = Chaos(procs, services, services.pg_url)
    done = asyncio.Event()
    try:
        for _ in range(3):
            chaos.start_worker()
        chaos.start_server("server-1")
        chaos.start_server("server-2")
        rng = random.Random(11)
        ids = [f"prod-{i}" for i in range(WORKFLOWS)]
        for i, workflow_id in enumerate(ids):
            await retrying(lambda i=i, w=workflow_id: client.start(  # type: ignore[misc]
                _flows.prod_mix, i, rng.choice([0.2, 0.5, 1.0, 2.0]), id=w), "start")
        chaos_task = asyncio.create_task(chaos.run(done))
        # Events arrive in a random order spread over the faults, some twice (same key), so
        # workflows are waiting, stepping and sleeping through every fault.
        for workflow_id in rng.sample(ids, len(ids)):
            handle = client.get_handle(workflow_id)
            for _ in range(rng.choice([1, 1, 2])):
                await retrying(lambda h=handle, w=workflow_id: h.send(  # type: ignore[misc]
                    _flows.GO, _flows.GO_PAYLOAD, idempotency_key=f"go-{w}"), "send")
            await asyncio.sleep(SCHEDULE_TICKS / len(ids))

        async def all_ended() -> bool:
            rows = await retrying(lambda: client.list(limit=WORKFLOWS + 10), "list")
            return sum(r.status != "running" for r in rows) == WORKFLOWS

        await eventually(all_ended, timeout=240, interval=0.25, what="every workflow to end")
        done.set()
        await chaos_task
        assert len(chaos.log) >= SCHEDULE_TICKS + 3, chaos.log  # every scheduled fault happened
        await _check_everything(client, ids, tmp_path)
    finally:
        done.set()
        procs.close()
        print("\n".join(chaos.log))
        print(procs.logs()[-20000:])


async def _check_everything(client: durable.Client, ids: list[str], directory: Path) -> None:
    for i, workflow_id in enumerate(ids):
        handle = client.get_handle(workflow_id)
        description = await handle.describe()
        assert description.status == "completed", (workflow_id, description)
        assert await handle.result() == _flows.prod_mix_result(i)
        events = await handle.history()
        check_history(events)
        fired = [e for e in events if type(e).__name__ == "TimerFired"]
        assert len(fired) == 1, (workflow_id, fired)  # one timer, fired exactly once
        received = [e for e in events if type(e).__name__ == "EventReceived"]
        assert len(received) == 1, (workflow_id, received)
    effects = _flows.read_effects(directory / "effects.jsonl")
    keys_by_call: dict[tuple[Any, ...], set[str]] = {}
    for line in effects:
        keys_by_call.setdefault((line["workflow_id"], *line["args"]), set()).add(line["key"])
    assert all(len(keys) == 1 for keys in keys_by_call.values()), "a call changed its key"
    ended = {(line["workflow_id"], *line["args"]) for line in effects if line["phase"] == "end"}
    assert len(ended) == 4 * len(ids), "an action call never finished"
