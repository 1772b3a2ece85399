"""Fair lanes: one tenant's work does not queue behind another tenant's backlog.

A resource of the process that serves work one item at a time (the SQLite store's thread)
keeps one queue per lane and serves the lanes round-robin, so a tenant whose backlog fills it
delays another tenant's next operation by at most one operation of each other busy lane,
however deep that backlog is.

The lane is the tenant the current asyncio task works for: a worker enters it for each task
it runs, a client call that names a tenant enters it for its caller (a hint that lasts until
the next one). Work for no tenant in particular (polls, claims, housekeeping) has the lane "".

Invariant: within a lane, work runs in the order it was submitted.

Work called with ``grouped=True`` may run together with the grouped work served right
after it (the next lanes' in turn, as they would have run one by one): the executor's
``group`` runs such a batch at once (the SQLite store: writes in one transaction).

Callers on an event loop use ``call``: the outcomes of what one turn of the thread ran (a
group, or one call) reach their loop together, one thread-safe wake-up for all of them rather
than one per call (on the standard loop each is a write to its self-pipe).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from concurrent.futures import Executor, Future
from contextvars import ContextVar
from typing import Any, Callable, Final, Protocol, TypeVar

__all__ = ["Call", "FairExecutor", "Group", "enter", "lane"]

T = TypeVar("T")
_LANE: Final[ContextVar[str]] = ContextVar("durable_lane", default="")
_HOLD: Final = 0.0005  # seconds an outcome may wait for the next ones (``_deliver``)


class _Outcome(Protocol):
    """Where the thread puts a call's outcome: a ``Future``, or a ``_Delivery``."""

    def set_running_or_notify_cancel(self) -> bool: ...
    def set_result(self, result: Any) -> None: ...
    def set_exception(self, exception: BaseException | None) -> None: ...
    def cancel(self) -> bool: ...


_Item = tuple[_Outcome, Callable[..., Any], tuple[Any, ...], dict[str, Any], bool]
Call = tuple[Callable[..., Any], tuple[Any, ...]]
# Runs grouped calls at once: for each, (True, its result) or (False, the exception it raised).
Group = Callable[[list[Call]], list[tuple[bool, Any]]]


def enter(tenant: str) -> None:
    """Make ``tenant`` the lane of the current task's work from now on."""
    _LANE.set(tenant)


def lane() -> str:
    """The lane of the current task's work."""
    return _LANE.get()


class FairExecutor(Executor):
    """One thread that runs what is submitted, lane by lane in turn (FIFO within a lane);
    ``group`` runs up to ``most`` grouped calls at once."""

    def __init__(self, name: str, group: Group | None = None, most: int = 64) -> None:
        self._lanes: dict[str, deque[_Item]] = {}  # insertion order: the next lane first
        self._ready = threading.Condition()
        self._stopping = False
        self._group = group
        self._most = most
        self._outbox: list[tuple[_Delivery, bool, Any]] = []  # the serving thread's only
        self._outbox_since = 0.0  # when its first outcome came
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        self._enqueue(future, fn, args, kwargs, False)
        return future

    def call(self, fn: Callable[..., T], /, *args: Any,
             grouped: bool = False) -> asyncio.Future[T]:
        """``submit`` from an event loop (``grouped``: it may run in a group, see the module):
        a future of that loop, resolved with the others of the same turn of the thread."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._enqueue(_Delivery(self, loop, future), fn, args, {},
                      grouped and self._group is not None)
        return future

    def _enqueue(self, future: _Outcome, fn: Callable[..., Any], args: tuple[Any, ...],
                 kwargs: dict[str, Any], grouped: bool) -> None:
        lane = _LANE.get()
        with self._ready:
            if self._stopping:
                raise RuntimeError("cannot schedule new futures after shutdown")
            queue = self._lanes.get(lane)
            if queue is None:
                queue = self._lanes[lane] = deque()
            queue.append((future, fn, args, kwargs, grouped))
            self._ready.notify()

    def _next(self) -> _Item:
        """The next item in turn (under the lock)."""
        lane, queue = next(iter(self._lanes.items()))
        item = queue.popleft()
        del self._lanes[lane]
        if queue:
            self._lanes[lane] = queue  # to the back of the round
        return item

    def _serve(self) -> None:
        while True:
            with self._ready:
                while not self._lanes and not self._stopping:
                    self._ready.wait()
                if not self._lanes:
                    break  # stopping, and everything submitted has run
                items = [self._next()]
                while items[0][4] and self._lanes and len(items) < self._most \
                        and next(iter(self._lanes.values()))[0][4]:
                    items.append(self._next())
            items = [i for i in items if i[0].set_running_or_notify_cancel()]
            if len(items) > 1:
                self._run_group(items)
            elif items:
                future, fn, args, kwargs, _ = items[0]
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:  # as ThreadPoolExecutor: the caller gets it
                    future.set_exception(exc)
                else:
                    future.set_result(result)
            # Only this thread empties the lanes (but a shutdown that cancels): while they
            # hold work, outcomes may wait for it, up to a bound.
            if self._outbox and (not self._lanes or len(self._outbox) >= self._most
                                 or time.perf_counter() - self._outbox_since >= _HOLD):
                self._deliver()
        self._deliver()

    def _post(self, outcome: tuple[_Delivery, bool, Any]) -> None:
        if not self._outbox:
            self._outbox_since = time.perf_counter()
        self._outbox.append(outcome)

    def _deliver(self) -> None:
        """Hand the outcomes this turn gave ``call``'s futures to their loops, one wake-up
        per loop."""
        if not self._outbox:
            return
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
        for delivery, ok, value in self._outbox:
            by_loop.setdefault(delivery.loop, []).append((delivery.future, ok, value))
        self._outbox.clear()
        for loop, outcomes in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve, outcomes)
            except RuntimeError:  # that loop is closed: nobody waits any more
                pass

    def _run_group(self, items: list[_Item]) -> None:
        assert self._group is not None
        try:
            outcomes = self._group([(fn, args) for _, fn, args, _, _ in items])
        except BaseException as exc:  # the group as a whole failed: each caller gets it
            for future, *_ in items:
                future.set_exception(exc)
            return
        for (future, *_), (ok, value) in zip(items, outcomes):
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Run what was submitted, then stop the thread (waiting for it with ``wait``)."""
        with self._ready:
            self._stopping = True
            if cancel_futures:
                for queue in self._lanes.values():
                    for future, *_ in queue:
                        future.cancel()
                self._lanes.clear()
            self._ready.notify_all()
        if wait and threading.current_thread() is not self._thread:
            self._thread.join()


class _Delivery:
    """A ``call``'s future, as the serving thread sees it: its outcome waits in the
    executor's outbox until the end of the turn (``FairExecutor._deliver``)."""

    __slots__ = ("executor", "loop", "future")

    def __init__(self, executor: FairExecutor, loop: asyncio.AbstractEventLoop,
                 future: asyncio.Future[Any]) -> None:
        self.executor = executor
        self.loop = loop
        self.future = future

    def set_running_or_notify_cancel(self) -> bool:
        return not self.future.cancelled()  # a race with a later cancel is harmless

    def set_result(self, result: Any) -> None:
        self.executor._post((self, True, result))

    def set_exception(self, exception: BaseException | None) -> None:
        self.executor._post((self, False, exception))

    def cancel(self) -> bool:
        try:
            self.loop.call_soon_threadsafe(self.future.cancel)
        except RuntimeError:  # that loop is closed
            return False
        return True


def _resolve(outcomes: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, ok, value in outcomes:
        if not future.done():  # its caller may have been cancelled
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
