"""durable._lanes: the SQLite store's thread serves tenants in turn."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

import durable

from durable._lanes import FairExecutor, enter


async def test_a_lane_with_a_backlog_does_not_hold_another_lane_back() -> None:
    executor = FairExecutor("test-lanes")
    gate = threading.Event()
    order: list[str] = []
    loop = asyncio.get_running_loop()

    async def submit(lane: str, name: str) -> None:
        enter(lane)
        await loop.run_in_executor(executor, order.append, name)

    blocker = loop.run_in_executor(executor, gate.wait)  # holds the thread while all queue up
    noisy = [asyncio.create_task(submit("noisy", f"n{i}")) for i in range(50)]
    await asyncio.sleep(0.01)
    quiet = asyncio.create_task(submit("quiet", "q"))
    await asyncio.sleep(0.01)
    gate.set()
    await asyncio.gather(blocker, quiet, *noisy)
    executor.shutdown()
    assert order.index("q") <= 1  # after at most one of the noisy lane's
    assert [n for n in order if n != "q"] == [f"n{i}" for i in range(50)]  # FIFO within a lane


async def test_errors_reach_the_caller_and_shutdown_runs_what_was_submitted() -> None:
    executor = FairExecutor("test-lanes")
    loop = asyncio.get_running_loop()
    with pytest.raises(ZeroDivisionError):
        await loop.run_in_executor(executor, lambda: 1 / 0)
    done = executor.submit(lambda: "ran")
    executor.shutdown(wait=True)
    assert done.result() == "ran"
    with pytest.raises(RuntimeError):
        executor.submit(lambda: None)


RELEASE = asyncio.Event()


@durable.action(name="LanesHold")
async def hold() -> None:
    await RELEASE.wait()


@durable.workflow(name="LanesBusy")
async def busy(ctx: durable.Context) -> str:
    await ctx.run(hold)
    return "busy done"


@durable.workflow(name="LanesQuick")
async def quick(ctx: durable.Context) -> str:
    return "quick done"


async def test_a_full_worker_starts_a_tenant_with_nothing_running_at_once() -> None:
    RELEASE.clear()
    async with durable.connect("memory://", tenants="*") as client:
        async with durable.Worker(client, [busy, quick], [hold], concurrency=1) as worker:
            noisy = await client.start(busy, id="busy", tenant="noisy")
            while worker.in_flight == 0 or "noisy" not in worker._tenants:
                await asyncio.sleep(0.001)
            try:
                assert not worker.takes_eager("LanesQuick", "noisy")  # its one slot is taken
                quiet = await client.start(quick, id="quick", tenant="quiet")  # a reserved slot
                assert await quiet.result(timeout=5) == "quick done"
                assert not RELEASE.is_set()  # while noisy's action still holds the slot
            finally:
                RELEASE.set()
            assert await noisy.result(timeout=5) == "busy done"


async def test_the_outcomes_of_one_turn_reach_the_loop_with_one_wake_up() -> None:
    """``call``: a group's outcomes (and a failing call's error) are handed to the event loop
    together, not one thread-safe wake-up per call; a lone call is not held back."""
    def group(calls: list[Any]) -> list[tuple[bool, Any]]:
        outcomes: list[tuple[bool, Any]] = []
        for fn, args in calls:
            try:
                outcomes.append((True, fn(*args)))
            except Exception as exc:  # noqa: BLE001 - its caller gets it
                outcomes.append((False, exc))
        return outcomes

    executor = FairExecutor("test-lanes", group=group)
    loop = asyncio.get_running_loop()
    wakes = 0
    wake = loop.call_soon_threadsafe

    def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal wakes
        wakes += 1
        return wake(*args, **kwargs)

    loop.call_soon_threadsafe = counted  # type: ignore[method-assign]
    try:
        gate = threading.Event()
        blocker = executor.call(gate.wait)
        calls = [executor.call(lambda n=n: 10 // n, grouped=True) for n in range(5, -1, -1)]
        await asyncio.sleep(0.01)
        gate.set()
        outcomes = await asyncio.gather(blocker, *calls, return_exceptions=True)
        assert outcomes[1:6] == [2, 2, 3, 5, 10]
        assert isinstance(outcomes[6], ZeroDivisionError)
        assert wakes <= 2  # the blocker's turn, then the group's (not one per call)
        before = wakes
        assert await asyncio.wait_for(executor.call(lambda: "alone"), timeout=1) == "alone"
        assert wakes == before + 1
    finally:
        loop.call_soon_threadsafe = wake  # type: ignore[method-assign]
        executor.shutdown()
