"""Fair lanes: one tenant's work does not queue behind another tenant's backlog.

A resource of the process that serves work one item at a time (the SQLite store's thread)
keeps one queue per lane and serves the lanes round-robin, so a tenant whose backlog fills it
delays another tenant's next operation by at most one operation of each other busy lane,
however deep that backlog is.

The lane is the tenant the current asyncio task works for: a worker enters it for each task
it runs, a client call that names a tenant enters it for its caller (a hint that lasts until
the next one). Work for no tenant in particular (polls, claims, housekeeping) has the lane "".

Invariant: within a lane, work runs in the order it was submitted.
"""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import Executor, Future
from contextvars import ContextVar
from typing import Any, Callable, Final, TypeVar

__all__ = ["FairExecutor", "enter"]

T = TypeVar("T")
_LANE: Final[ContextVar[str]] = ContextVar("durable_lane", default="")
_Item = tuple["Future[Any]", Callable[..., Any], tuple[Any, ...], dict[str, Any]]


def enter(tenant: str) -> None:
    """Make ``tenant`` the lane of the current task's work from now on."""
    _LANE.set(tenant)


class FairExecutor(Executor):
    """One thread that runs what is submitted, lane by lane in turn (FIFO within a lane)."""

    def __init__(self, name: str) -> None:
        self._lanes: dict[str, deque[_Item]] = {}  # insertion order: the next lane first
        self._ready = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        lane = _LANE.get()
        with self._ready:
            if self._stopping:
                raise RuntimeError("cannot schedule new futures after shutdown")
            queue = self._lanes.get(lane)
            if queue is None:
                queue = self._lanes[lane] = deque()
            queue.append((future, fn, args, kwargs))
            self._ready.notify()
        return future

    def _serve(self) -> None:
        while True:
            with self._ready:
                while not self._lanes and not self._stopping:
                    self._ready.wait()
                if not self._lanes:
                    return  # stopping, and everything submitted has run
                lane, queue = next(iter(self._lanes.items()))
                future, fn, args, kwargs = queue.popleft()
                del self._lanes[lane]
                if queue:
                    self._lanes[lane] = queue  # to the back of the round
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:  # as ThreadPoolExecutor: the caller gets it
                future.set_exception(exc)
            else:
                future.set_result(result)

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
