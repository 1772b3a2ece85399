"""External events (``handle.send``) inside the engine: ``ctx.wait_for`` and the inbox of
events that arrived before anything waited for them."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, NamedTuple

from .._history import EventReceived

__all__ = ["Inbox"]


class _Waiter(NamedTuple):
    names: tuple[str, ...]
    future: asyncio.Future[Any]


class Inbox:
    """Events received and not taken yet, oldest first, and the waits for them."""

    __slots__ = ("_loop", "_events", "_waiters")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._events: deque[EventReceived] = deque()
        self._waiters: list[_Waiter] = []

    def deliver(self, event: EventReceived) -> None:
        """A recorded ``EventReceived``: to the first waiter for its name, else kept."""
        for waiter in self._waiters:
            if event.name in waiter.names and not waiter.future.done():
                waiter.future.set_result(event)
                self._waiters.remove(waiter)
                return
        self._events.append(event)

    async def wait_for(self, names: tuple[str, ...], timeout: float | None) -> EventReceived | None:
        """The first unconsumed event named one of ``names``, or None after ``timeout``."""
        for event in self._events:
            if event.name in names:
                self._events.remove(event)
                return event
        fut: asyncio.Future[Any] = self._loop.create_future()
        waiter = _Waiter(names, fut)
        self._waiters.append(waiter)
        timer = None if timeout is None else self._loop.call_later(timeout, _resolve_none, fut)
        try:
            return await fut  # type: ignore[no-any-return]
        finally:
            if timer is not None:
                timer.cancel()
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def unconsumed(self) -> list[EventReceived]:
        """Events received that no ``wait_for`` took yet, oldest first."""
        return list(self._events)


def _resolve_none(fut: asyncio.Future[Any]) -> None:
    if not fut.done():
        fut.set_result(None)
