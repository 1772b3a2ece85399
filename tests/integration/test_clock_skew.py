"""One clock for timers (issue 12): workers whose clocks are an hour off neither fire other
workers' timers early nor make their own fire early, and the workflow's recorded time never
moves backwards when its tasks run on workers whose clocks disagree.

Each worker has its own client and store connection, as a worker on another machine would;
its clock is the client's (``Client(clock=...)``). Real time passes: these tests sleep on
1-second timers (one fired early by an hour's skew fires at once, or at a worker's first poll).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

import durable
from durable._history import TaskCompleted, TimerFired, TimerStarted
from durable._stores import Store, open_store
from durable._stores.memory import MemoryStore

from _support import eventually

pytestmark = pytest.mark.integration

SKEW = 3600.0
TIMER = 1.0


@durable.workflow(name="SkewSleeper")
async def sleeper(ctx: durable.Context, seconds: float) -> float:
    before = ctx.now()
    await ctx.sleep(seconds)
    return (ctx.now() - before).total_seconds()


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/skew.db"
    return str(request.getfixturevalue("pg_database"))


@pytest.fixture
async def connect(store_url: str) -> AsyncIterator[Callable[[float], durable.Client]]:
    """``connect(skew)``: a client (with a store connection of its own, except on the memory
    store, which lives in one process) whose clock runs ``skew`` seconds off."""
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    stores: list[Store] = []
    shared = MemoryStore() if store_url.startswith("memory") else None

    async def open_client(skew: float) -> durable.Client:
        store = shared or await open_store(store_url)
        if store is not shared:
            stores.append(store)
        return durable.Client(store, tenant=tenant, poll_interval=0.05,
                              clock=lambda: time.time() + skew)

    yield open_client  # type: ignore[misc]
    for store in stores:
        await store.close()


def worker(client: durable.Client, *workflows: object) -> durable.Worker:
    return durable.Worker(client, list(workflows), poll_interval=0.05, lease=5.0)


async def timer_span(handle: durable.WorkflowHandle[float]) -> tuple[float, float]:
    """When the timer was started and when it fired, by the events' own stamps."""
    events = await handle.history()
    started = next(e for e in events if isinstance(e, TimerStarted))
    fired = next(e for e in events if isinstance(e, TimerFired))
    return started.time, fired.time


async def test_a_worker_an_hour_ahead_does_not_fire_other_workers_timers_early(
        connect: Callable[[float], object]) -> None:
    normal = await connect(0.0)  # type: ignore[misc]
    ahead = await connect(SKEW)  # type: ignore[misc]
    # The worker an hour ahead only fires timers (and looks for work) as often as it can.
    async with worker(normal, sleeper), worker(ahead):
        began = time.monotonic()
        handle = await normal.start(sleeper, TIMER)
        slept = await handle.result(timeout=30)
        elapsed = time.monotonic() - began
    assert TIMER <= elapsed < TIMER + 10, elapsed  # before: fired after the ahead one's first poll
    assert TIMER <= slept < TIMER + 10


async def test_a_worker_an_hour_behind_does_not_make_its_timers_fire_early(
        connect: Callable[[float], object]) -> None:
    behind = await connect(-SKEW)  # type: ignore[misc]
    normal = await connect(0.0)  # type: ignore[misc]
    async with worker(behind, sleeper), worker(normal, sleeper):
        began = time.monotonic()
        handle = await behind.start(sleeper, TIMER)  # eager: the worker behind runs its start
        await handle.result(timeout=30)
        elapsed = time.monotonic() - began
    assert TIMER <= elapsed < TIMER + 10, elapsed  # before: due an hour ago on the others' clock


async def test_the_workflow_s_time_never_moves_backwards_across_workers(
        connect: Callable[[float], object]) -> None:
    ahead = await connect(SKEW)  # type: ignore[misc]
    normal = await connect(0.0)  # type: ignore[misc]
    async with worker(ahead, sleeper):
        handle = await ahead.start(sleeper, 0.5)

        async def waits_on_its_timer() -> bool:
            return bool((await handle.describe()).pending_timers)

        await eventually(waits_on_its_timer, what="the timer to be started")
    # Its next task runs on a worker whose clock is an hour behind the recorded time.
    async with worker(normal, sleeper):
        slept = await handle.result(timeout=30)
    times = [e.time for e in await handle.history() if isinstance(e, TaskCompleted)]
    assert len(times) == 2 and times == sorted(times), times
    assert slept >= 0.0
