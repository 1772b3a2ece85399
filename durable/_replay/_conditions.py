"""``ctx.wait_condition(predicate)``: wait until workflow state makes a predicate true.

A condition is checked when it is first awaited, and then each time the workflow has run as
far as it can after an input (every task waits again): the instance calls :meth:`check`,
which evaluates the waiting predicates in the order they began to wait and wakes those that
hold; the loop runs again, and the conditions are checked again, until none more holds. The
points at which predicates are evaluated are fixed by the history, so a replay wakes the same
waits at the same points. A predicate must only read workflow state; one that raises fails
its wait with that exception.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable

__all__ = ["Conditions"]


class _Wait:
    __slots__ = ("predicate", "future")

    def __init__(self, predicate: Callable[[], Any], future: asyncio.Future[bool]) -> None:
        self.predicate = predicate
        self.future = future


class Conditions:
    """The condition waits of one run, in the order they began."""

    __slots__ = ("_loop", "_waits")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._waits: list[_Wait] = []

    def __bool__(self) -> bool:
        return bool(self._waits)

    async def wait(self, predicate: Callable[[], Any], timeout: float | None) -> bool:
        """True once ``predicate()`` holds; False if ``timeout`` seconds pass first."""
        if predicate():
            return True
        fut: asyncio.Future[bool] = self._loop.create_future()
        wait = _Wait(predicate, fut)
        self._waits.append(wait)
        timer = None if timeout is None else self._loop.call_later(timeout, _expire, fut)
        try:
            return await fut
        finally:
            if timer is not None:
                timer.cancel()
            if wait in self._waits:
                self._waits.remove(wait)

    def check(self) -> bool:
        """Wake the waits whose predicate holds now; whether any was woken."""
        woken = False
        for wait in list(self._waits):
            if wait.future.done():
                continue
            try:
                holds = wait.predicate()
            except Exception as exc:  # noqa: BLE001 - the wait fails with it
                wait.future.set_exception(exc)
                woken = True
                continue
            if holds:
                wait.future.set_result(True)
                woken = True
        return woken


def _expire(fut: asyncio.Future[bool]) -> None:
    if not fut.done():
        fut.set_result(False)
