"""``durable_server.Server`` and the ``durable server`` / ``durable migrate`` commands.

Every test runs against each store (the ``backend`` fixture: memory, SQLite and, once it is in
``open_store`` and a server is configured, PostgreSQL). Hints go to a recording dispatcher, so
the tests see exactly what the server publishes. The workers in these tests do not fire
timers (``LocalDispatcher(fire_timers=False)``, as with Redis dispatch): only servers do.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import durable
from _support import eventually
from durable import _stores
from durable._cli import main
from durable._dispatch import Claim, ClaimSpec, LocalDispatcher
from durable._history import ActionScheduled, TimerFired
from durable._stores import Store, TaskRef, action_ref, open_store, workflow_ref
from durable.errors import StoreUnavailableError
from durable_server import Server

REPO = Path(__file__).resolve().parents[2]
NAP = 0.2  # seconds of the durable timers


@durable.action(name="server_test_step")
async def step(n: int) -> int:
    return n + 1


@durable.workflow(name="ServerTestNap")
async def nap(ctx: durable.Context, n: int) -> int:
    await ctx.sleep(NAP)
    return n


@durable.workflow(name="ServerTestStep")
async def one_step(ctx: durable.Context, n: int) -> int:
    return await ctx.run(step, n)


# ---- fixtures and helpers --------------------------------------------------------------------


@dataclass
class Backend:
    """One store's data, reachable through several store objects (as from several processes)."""

    url: str
    shared: Store | None = None  # memory: the one instance every "process" shares
    opened: list[Store] = field(default_factory=list)

    async def open(self) -> Store:
        if self.shared is not None:
            return self.shared
        store = await open_store(self.url)
        self.opened.append(store)
        return store


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh store's URL (sync, so that it may pull in the async ``pg_database``)."""
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'server.db'}"
    return str(request.getfixturevalue("pg_database"))


@pytest.fixture
async def backend(store_url: str) -> AsyncIterator[Backend]:
    found = Backend(store_url)
    try:
        first = await found.open()
    except ValueError as exc:  # PostgreSQL until its store is in open_store
        pytest.skip(f"open_store cannot open {store_url.split(':')[0]} yet: {exc}")
    if store_url.startswith("memory:"):
        found.shared = first
    yield found
    for store in found.opened:
        await store.close()


@pytest.fixture
def tenant() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


class RecordingDispatcher:
    """Appends every published hint to ``published``; raises while ``down`` is set."""

    def __init__(self) -> None:
        self.published: list[TaskRef] = []
        self.down = False

    async def publish(self, refs: Sequence[TaskRef], *, sticky: bool = True) -> None:
        if self.down:
            raise ConnectionError("dispatcher down (test)")
        self.published.extend(refs)

    async def receive(self, spec: ClaimSpec, *, limit: int, timeout: float,
                      kinds: Any = None) -> list[Claim]:
        return []

    async def stick(self, owner: str, tenant: str, workflow_id: str, *, keep: bool) -> float:
        return float("inf")

    async def forget(self, tenant: str, workflow_id: str) -> None:
        pass

    async def forget_worker(self, owner: str) -> None:
        pass

    async def retire(self, owner: str) -> None:
        pass

    async def ack(self, claims: Sequence[Claim]) -> None:
        pass

    async def close(self) -> None:
        pass


class FlakyStore:
    """Wraps a store; while ``down`` is set every store method raises StoreUnavailableError."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.down = False

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if not inspect.iscoroutinefunction(attr):
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            if self.down:
                raise StoreUnavailableError("database is down (test)")
            return await attr(*args, **kwargs)

        return call


def server_client(store: Store, tenant: str) -> tuple[durable.Client, RecordingDispatcher]:
    dispatcher = RecordingDispatcher()
    return durable.Client(store, dispatcher=dispatcher, tenant=tenant), dispatcher


async def worker_client(backend: Backend, tenant: str) -> durable.Client:
    """A client for workers that do not fire timers (as with Redis dispatch)."""
    store = await backend.open()
    return durable.Client(store, dispatcher=LocalDispatcher(store, fire_timers=False), tenant=tenant)


async def start_napping(backend: Backend, tenant: str, count: int) -> list[durable.WorkflowHandle[int]]:
    """``count`` executions, each waiting on a durable timer of NAP seconds."""
    client = await worker_client(backend, tenant)
    handles = [await client.start(nap, i, id=f"nap-{uuid.uuid4().hex[:8]}-{i}") for i in range(count)]
    await durable.Worker(client, workflows=[nap]).run_until_idle()
    return handles


def sample(server: Server, name: str, **labels: str) -> float:
    return server.metrics.registry.get_sample_value(name, labels) or 0.0


def requires(store: Store, method: str) -> None:
    if not hasattr(store, method):
        pytest.skip(f"{type(store).__name__} has no {method}() yet")


async def get(session: aiohttp.ClientSession, url: str) -> tuple[int, str, Any]:
    async with session.get(url) as response:
        body = await response.json() if response.content_type == "application/json" else None
        return response.status, await response.text(), body


def metric_value(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.split(" ")[0] == name:
            return float(line.split(" ")[1])
    raise AssertionError(f"no {name} in\n{text}")


# ---- the timer loop ---------------------------------------------------------------------------


async def test_two_servers_fire_each_timer_exactly_once(backend: Backend, tenant: str) -> None:
    handles = await start_napping(backend, tenant, 12)
    client_a, published_a = server_client(await backend.open(), tenant)
    client_b, published_b = server_client(await backend.open(), tenant)
    requires(client_a.store, "dispatch_due")  # the outbox loop runs too
    async with (Server(client_a, port=0, batch=2, interval=0.01) as a,
                Server(client_b, port=0, batch=2, interval=0.01) as b):
        def fired() -> float:
            return sample(a, "durable_timers_fired_total") + sample(b, "durable_timers_fired_total")

        await eventually(lambda: fired() >= 12, what="12 timers to fire")
    assert fired() == 12
    refs = published_a.published + published_b.published
    assert Counter(refs) == Counter(workflow_ref(tenant, h.workflow_id) for h in handles)
    for handle in handles:
        events = await handle.history()
        assert len([e for e in events if isinstance(e, TimerFired)]) == 1, events

    await durable.Worker(await worker_client(backend, tenant), workflows=[nap]).run_until_idle()
    assert [await h.result(timeout=1) for h in handles] == list(range(12))


# ---- the outbox loop --------------------------------------------------------------------------


async def test_expired_action_lease_is_redispatched(backend: Backend, tenant: str) -> None:
    store = await backend.open()
    requires(store, "dispatch_due")
    client = durable.Client(store, tenant=tenant)
    handle = await client.start(one_step, 41, id="one-step")
    await durable.Worker(client, workflows=[one_step]).run_until_idle()  # schedules the action
    [dead] = await store.claim_action_tasks(["server_test_step"], "dead-worker", lease=0.05,
                                            now=time.time(), limit=10)

    server_store = await backend.open()
    server_client_, dispatcher = server_client(server_store, tenant)
    async with Server(server_client_, port=0, interval=0.01, redispatch_after=0.1) as server:
        await eventually(lambda: action_ref(dead) in dispatcher.published,
                         what="the expired action to be re-published")
    assert sample(server, "durable_tasks_redispatched_total") >= 1
    assert dispatcher.published.count(action_ref(dead)) >= 1

    # another worker takes it over with the hint, as a Redis consumer would
    _, [taken] = await store.claim_refs(dispatcher.published, "worker-2", workflows=[],
                                        actions=["server_test_step"], lease=30.0, now=time.time())
    assert (taken.cmd, taken.attempt) == (dead.cmd, 2)
    events = await handle.history()
    assert [e.cmd for e in events if isinstance(e, ActionScheduled)] == [dead.cmd]


async def test_outbox_redispatches_a_lost_hint(backend: Backend, tenant: str) -> None:
    store = await backend.open()
    requires(store, "dispatch_due")
    client = durable.Client(store, dispatcher=RecordingDispatcher(), tenant=tenant)
    await client.start(nap, 1, id="lost-hint")  # its hint went to a dispatcher that lost it
    server_client_, dispatcher = server_client(await backend.open(), tenant)
    async with Server(server_client_, port=0, interval=0.01, redispatch_after=0.05):
        announced = workflow_ref(tenant, "lost-hint", "ServerTestNap")  # the outbox names it
        await eventually(lambda: announced in dispatcher.published,
                         what="the workflow task to be announced again")


# ---- HTTP: /healthz and /metrics ----------------------------------------------------------------


async def test_healthz_and_metrics(backend: Backend, tenant: str) -> None:
    store = await backend.open()
    requires(store, "dispatch_due")
    client, _ = server_client(store, tenant)
    async with Server(client, port=0, interval=0.01) as server, \
            aiohttp.ClientSession() as http:
        assert server.port != 0
        status, _, body = await eventually(lambda: _healthy(http, server), what="/healthz 200")
        assert body["status"] == "ok" and body["identity"] == server.identity

        status, text, _ = await get(http, f"{server.url}/metrics")
        assert status == 200
        assert metric_value(text, "durable_timers_fired_total") == 0
        assert metric_value(text, "durable_server_up") == 1
        assert metric_value(text, 'durable_server_errors_total{loop="timers"}') == 0

        await start_napping(backend, tenant, 3)

        async def three_fired() -> str | None:
            text = (await get(http, f"{server.url}/metrics"))[1]
            return text if metric_value(text, "durable_timers_fired_total") == 3 else None

        text = await eventually(three_fired, what="/metrics to count 3 fired timers")
        assert metric_value(text, 'durable_server_loop_duration_seconds_count{loop="timers"}') > 0
        assert metric_value(text, 'durable_server_loop_duration_seconds_count{loop="outbox"}') > 0
        async with http.get(f"{server.url}/metrics") as response:
            assert response.headers["Content-Type"].startswith("text/plain")


async def _healthy(http: aiohttp.ClientSession, server: Server) -> tuple[int, str, Any] | None:
    status, text, body = await get(http, f"{server.url}/healthz")
    return (status, text, body) if status == 200 else None


async def test_store_outage_turns_healthz_503_and_the_server_recovers(
        backend: Backend, tenant: str) -> None:
    requires(await backend.open(), "dispatch_due")
    flaky = FlakyStore(await backend.open())
    client, dispatcher = server_client(flaky, tenant)
    async with Server(client, port=0, interval=0.01) as server, \
            aiohttp.ClientSession() as http:
        await eventually(lambda: _healthy(http, server), what="/healthz 200")
        flaky.down = True

        async def unavailable() -> Any:
            status, _, body = await get(http, f"{server.url}/healthz")
            return body if status == 503 else None

        body = await eventually(unavailable, what="/healthz 503")
        assert body["status"] == "unavailable"
        assert "store unavailable" in body["reason"] and "database is down" in body["reason"]
        await eventually(lambda: sample(server, "durable_server_errors_total", loop="timers") >= 2,
                         what="the timer loop to keep trying")
        assert sample(server, "durable_server_up") == 0
        handles = await start_napping(backend, tenant, 1)  # a timer set during the outage ...

        flaky.down = False
        await eventually(lambda: _healthy(http, server), what="/healthz 200 again")
        await eventually(lambda: workflow_ref(tenant, handles[0].workflow_id) in dispatcher.published,
                         what="the timer to fire after the outage")  # ... fires after it
        assert sample(server, "durable_server_up") == 1


async def test_dispatcher_outage_keeps_the_hints_until_it_is_back(backend: Backend,
                                                                   tenant: str) -> None:
    store = await backend.open()
    requires(store, "dispatch_due")
    client, dispatcher = server_client(store, tenant)
    dispatcher.down = True
    [handle] = await start_napping(backend, tenant, 1)
    async with Server(client, port=0, interval=0.01) as server, \
            aiohttp.ClientSession() as http:
        await eventually(lambda: sample(server, "durable_timers_fired_total") == 1,
                         what="the timer to fire")
        status, _, body = await get(http, f"{server.url}/healthz")
        assert status == 200, body  # the store answers: the server does its part
        assert "dispatcher down" in body["loops"]["timers"]["publish_error"]
        dispatcher.down = False
        await eventually(lambda: workflow_ref(tenant, handle.workflow_id) in dispatcher.published,
                         what="the kept hint to be published")
    assert len([e for e in await handle.history() if isinstance(e, TimerFired)]) == 1


# ---- the command line ---------------------------------------------------------------------------


async def test_durable_server_command_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = {**os.environ, "DURABLE_DB": f"sqlite:///{tmp_path / 'cli.db'}",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    env.pop("DURABLE_REDIS", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "durable._cli", "server", "--port", "0", "--interval", "0.05",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        first = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
        assert "durable server" in first and "started" in first, first
        url = first.split("http=")[1].split()[0]
        async with aiohttp.ClientSession() as http:
            _, _, body = await eventually(lambda: _healthy_at(http, url), what="/healthz")
        assert body["status"] == "ok"
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 5)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert "stopped" in out.decode()


async def _healthy_at(http: aiohttp.ClientSession, url: str) -> tuple[int, str, Any] | None:
    status, text, body = await get(http, f"{url}/healthz")
    return (status, text, body) if status == 200 else None


def test_durable_migrate_prints_the_schema_version(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    if not hasattr(_stores, "migrate_store"):
        pytest.skip("durable._stores.migrate_store does not exist yet (it comes with the "
                    "PostgreSQL store)")
    url = f"sqlite:///{tmp_path / 'migrate.db'}"
    assert main(["migrate", "--db", url]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("schema version ") and out.strip().endswith(f" at {url}"), (out, err)
    assert int(out.split()[2]) >= 1
    assert main(["migrate", "--db", url]) == 0  # idempotent
    assert capsys.readouterr().out == out
