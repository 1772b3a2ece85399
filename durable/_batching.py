"""Group commit: concurrent calls of one store operation coalesced into one round trip.

A worker running many workflow tasks at once reaches the same store operation (read a
history, commit a task, create an execution) from many tasks in the same turn of the event
loop. ``Batcher`` queues those calls and sends them together, so N executions cost one
statement and one transaction instead of N. A call waits at most for the batches already in
flight, never for a timer: alone, it goes out on the next turn of the loop.

Fairness (``express``): a batch's callers all wait for the whole batch, so under one tenant's
backlog every call would wait for a batch or two of that tenant's work. A call of a lane
(``_lanes``: the tenant it works for) with nothing else queued or in flight here goes out at
once on its own instead, while fewer than ``express`` such calls are out: a quiet tenant's
commit costs one round trip, not a noisy tenant's batches.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from ._lanes import lane

__all__ = ["Batcher"]

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """Runs ``run_many(items)`` for the items submitted while fewer than ``max_in_flight``
    batches are out; each caller gets its own result.

    ``run_many`` returns one result per item, in order. If it raises one of ``shared_errors``
    (the store is down), every caller gets that error; any other error is retried item by
    item with ``run_one``, so only the item that caused it sees it (a batch is one
    transaction: nothing of it was written). With ``express`` > 0, up to that many calls of
    lanes with nothing else here go out on their own with ``run_one`` (see the module).
    """

    def __init__(self, run_many: Callable[[Sequence[T]], Awaitable[Sequence[R]]],
                 run_one: Callable[[T], Awaitable[R]], *,
                 shared_errors: tuple[type[Exception], ...] = (), max_in_flight: int = 2,
                 max_batch: int = 500, express: int = 0) -> None:
        self._run_many = run_many
        self._run_one = run_one
        self._shared_errors = shared_errors
        self._max_in_flight = max_in_flight
        self._max_batch = max_batch
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._flushes: set[asyncio.Task[None]] = set()
        self._scheduled = False
        self._express = express > 0
        self._express_free = express  # express calls that may go out now
        self._lanes: dict[str, int] = {}  # with express: each lane's calls queued or out here

    async def submit(self, item: T) -> R:
        """Run ``item`` in the next batch (or on its own, see ``express``); its result (or the
        error it caused)."""
        if not self._express:
            return await self._batched(item)
        key = lane()
        mine = self._lanes.get(key, 0)
        self._lanes[key] = mine + 1
        try:
            if mine == 0 and (self._queue or self._flushes) and self._express_free > 0:
                self._express_free -= 1
                try:
                    return await self._run_one(item)
                finally:
                    self._express_free += 1
            return await self._batched(item)
        finally:
            if self._lanes[key] == 1:
                del self._lanes[key]
            else:
                self._lanes[key] -= 1

    async def _batched(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[R] = loop.create_future()
        self._queue.append((item, fut))
        self._schedule(loop)
        return await fut  # a cancelled caller cancels its future only: the batch goes on

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._scheduled and len(self._flushes) < self._max_in_flight:
            self._scheduled = True
            loop.call_soon(self._start, loop)  # let this turn's other callers join

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._scheduled = False
        while self._queue and len(self._flushes) < self._max_in_flight:
            batch, self._queue = self._queue[:self._max_batch], self._queue[self._max_batch:]
            task = loop.create_task(self._flush(batch))
            self._flushes.add(task)
            task.add_done_callback(self._flushed)

    def _flushed(self, task: asyncio.Task[None]) -> None:
        self._flushes.discard(task)
        if self._queue:
            self._schedule(task.get_loop())

    async def _flush(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        if len(batch) > 1:
            try:
                results = await self._run_many([item for item, _ in batch])
            except self._shared_errors as exc:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                return
            except Exception:  # noqa: BLE001 - retried one by one below, errors go to callers
                pass
            else:
                for (_, fut), result in zip(batch, results):
                    if not fut.done():
                        fut.set_result(result)
                return
        await asyncio.gather(*(self._one(item, fut) for item, fut in batch))

    async def _one(self, item: T, fut: asyncio.Future[R]) -> None:
        try:
            result = await self._run_one(item)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            if not fut.done():
                fut.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        else:
            if not fut.done():
                fut.set_result(result)

    async def close(self) -> None:
        """Wait for the batches in flight."""
        while self._flushes:
            await asyncio.gather(*self._flushes, return_exceptions=True)
