"""A worker and a server stop when cancelled even where a library swallowed the cancellation,
as Python 3.11's ``asyncio.wait_for`` does when what it waits for finishes just then
(gh-86296; redis-py sends every command through it): their loops look at the task's
``cancelling()`` count every round."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import durable
from durable_server import Server

swallowed: list[str] = []


def swallowing(result: Any) -> Callable[..., Awaitable[Any]]:
    """A store or Redis call that returns ``result`` and loses the first cancellation that
    arrives while it runs (only the first: a test that fails can still stop the task)."""
    async def call(*args: Any, **kwargs: Any) -> Any:
        try:
            await asyncio.sleep(0.005)
        except asyncio.CancelledError:
            if swallowed:
                raise
            swallowed.append("swallowed")
        return result
    return call


@durable.workflow(name="LostCancellationFlow")
async def flow(ctx: durable.Context) -> None:
    return None


async def stopped(service: durable.Worker | Server) -> bool:
    """Whether ``service.run()``, cancelled, ends cancelled within a few seconds although the
    cancellation was swallowed."""
    task = asyncio.create_task(service.run())
    await asyncio.sleep(0.05)  # well into its loop
    swallowed.clear()
    while not swallowed:  # until a cancellation lands in the call that swallows it
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=0.02)
        if done:
            return task.cancelled()
    done, _ = await asyncio.wait({task}, timeout=5.0)
    if not done:  # the test fails; do not leave it running
        service.shutdown()
        await asyncio.wait({task}, timeout=5.0)
    return bool(done) and task.cancelled()


async def test_a_worker_whose_poll_swallows_the_cancellation_stops() -> None:
    async with durable.connect("memory://") as client:
        client.dispatcher.receive = swallowing([])  # type: ignore[method-assign]
        worker = durable.Worker(client, [flow], [], poll_interval=0.01)
        assert await stopped(worker)


async def test_a_server_whose_loop_swallows_the_cancellation_stops() -> None:
    async with durable.connect("memory://") as client:
        server = Server(client, interval=0.01, port=0)
        server._fire_timers = swallowing(0.0)  # type: ignore[method-assign]
        assert await stopped(server)
