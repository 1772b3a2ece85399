"""External events (``handle.send``) inside the engine: ``ctx.wait_for``, the signal handlers
of ``ctx.on_signal``, and the inbox of events that arrived before anything took them.

An event goes to the first waiter for its name, else to the handler of its name, else it is
kept. A handler registered later first takes the kept events of its name, in order, so that an
event never depends on whether it arrived before or after the code that handles it. Handlers
run as tasks on the workflow's loop, one per event in arrival order, so they may await
actions and timers; a replay makes the same tasks in the same order.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import deque
from typing import Any, Callable, NamedTuple

from .._history import EventReceived, TaskCompleted
from .._payloads import Params, convert
from ..errors import ArgumentTypeError, ValidationError
from ._ahead import Ahead, AheadFuture

__all__ = ["Inbox"]

_logger = logging.getLogger("durable.workflow")


class _Waiter(NamedTuple):
    names: tuple[str, ...]
    future: asyncio.Future[Any]


class _Handler(NamedTuple):
    fn: Callable[..., Any]
    params: Params
    takes_metadata: bool


class Inbox:
    """Events received and not taken yet, oldest first, the waits for them and the handlers."""

    __slots__ = ("_loop", "_events", "_waiters", "_handlers", "ahead")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._events: deque[EventReceived] = deque()
        self._waiters: list[_Waiter] = []
        self._handlers: dict[str, _Handler] = {}
        self.ahead: Ahead | None = None  # while ``replay`` runs: its batches (``_ahead``)

    def deliver(self, event: EventReceived) -> None:
        """A recorded ``EventReceived``: to the first waiter for its name, else to its handler,
        else kept."""
        for waiter in self._waiters:
            if event.name in waiter.names and not waiter.future.done():
                waiter.future.set_result(event)
                self._waiters.remove(waiter)
                return
        handler = self._handlers.get(event.name)
        if handler is None or not self._handle(handler, event):
            self._events.append(event)

    async def wait_for(self, names: tuple[str, ...], timeout: float | None,
                       type: Any = None) -> EventReceived | None:
        """The first unconsumed event named one of ``names``, or None after ``timeout``; with
        ``type``, its payload converted to it (a ``ValidationError`` here if it does not fit)."""
        for event in self._events:
            if event.name in names:
                self._events.remove(event)
                return _typed(event, type)
        ahead = self.ahead  # the next batch an event of these names alone: a look-ahead
        lone: Any = None if ahead is None \
            or ahead.events[ahead.after].__class__ is not TaskCompleted \
            else ahead.events[ahead.ends]
        if lone.__class__ is EventReceived and lone.name in names:
            fut: asyncio.Future[Any] = AheadFuture(loop=self._loop)
            fut._ahead, fut._at = ahead, ahead.ends  # type: ignore[attr-defined, union-attr]
        else:
            fut = asyncio.Future(loop=self._loop)
        # tuple.__new__ skips the generated, keyword-parsing __new__ (one per wait)
        waiter = tuple.__new__(_Waiter, (names, fut))  # pyright: ignore[reportUnknownMemberType]
        self._waiters.append(waiter)
        timer = None if timeout is None else self._loop.call_later(timeout, _resolve_none, fut)
        try:
            received: EventReceived | None = await fut
            if received is None or type is None:
                return received  # _typed's common case, without the call
            return _typed(received, type)
        finally:
            if timer is not None:
                timer.cancel()
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def on_signal(self, name: str, fn: Callable[..., Any]) -> None:
        """Register (or replace) the handler of events ``name``; it takes the kept ones now."""
        positional = [p for p in inspect.signature(fn).parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if not 1 <= len(positional) <= 2:
            raise ArgumentTypeError(f"the handler of signal {name!r} takes the payload, and "
                                    "optionally the metadata: one or two positional parameters")
        handler = _Handler(fn, Params(fn, f"signal handler {name!r}"), len(positional) == 2)
        self._handlers[name] = handler
        kept = [e for e in self._events if e.name == name]
        for event in kept:
            if self._handle(handler, event):
                self._events.remove(event)

    def unconsumed(self) -> list[EventReceived]:
        """Events received that no ``wait_for`` or handler took yet, oldest first."""
        return list(self._events)

    def _handle(self, handler: _Handler, event: EventReceived) -> bool:
        """Start ``handler`` on ``event``; False (the event is kept) if its payload does not
        convert to the handler's parameter type."""
        try:
            args, _ = handler.params.load([event.payload], {})
        except ValidationError as exc:
            _logger.warning("event %r (seq %d) was not given to its handler: %s; it stays "
                            "for ctx.wait_for", event.name, event.seq, exc)
            return False
        if handler.takes_metadata:
            args.append(event.metadata or {})
        self._loop.create_task(_run(handler.fn, args), name=f"signal {event.name} {event.seq}")
        return True


async def _run(fn: Callable[..., Any], args: list[Any]) -> None:
    result = fn(*args)
    if inspect.isawaitable(result):
        await result


def _typed(event: EventReceived, type: Any) -> EventReceived:
    """``event`` with its payload converted to ``type`` (None: as recorded)."""
    if type is None:
        return event
    payload = convert(event.payload, type, f"event {event.name!r} (seq {event.seq}) as "
                      f"{getattr(type, '__name__', type)}")
    return EventReceived(event.seq, event.time, event.name, payload, event.key, event.metadata)


def _resolve_none(fut: asyncio.Future[Any]) -> None:
    if not fut.done():
        fut.set_result(None)
