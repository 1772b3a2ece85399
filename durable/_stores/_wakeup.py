"""``Wakeup``: how a store wakes this process's waiters once its writes are done.

Pollers wait for new work, result waiters for one execution's end, request callers for an
answer. A store reports what it did after its I/O returns, on the event loop's thread, so
waiters are woken directly; what other processes do is seen by polling (or relayed by the
store, as PostgreSQL's ``LISTEN`` does). A missed wake-up only costs a poll interval: waiters
re-read the store, never trust the notice alone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from typing import Awaitable, Callable, Final, Generator, Sequence

from ._records import FINISHED_REQUESTS, Outcome, Reply

__all__ = ["Wakeup"]


_RECENT_ENDS: Final = 10_000  # ends remembered, for result waiters that come late
_FIRST_POLL, _LAST_POLL = 0.002, 0.05  # seconds between looks at other processes' changes


class Wakeup:
    """In-process wake-ups: pollers wait for new work, result waiters for one execution's end.

    Stores call :meth:`notify` when they made work runnable, :meth:`ended` when an execution
    reached a terminal status and :meth:`replied` (or :meth:`answered`) when a request got
    its answer; after a workflow-task commit, ``_commit.Committer`` calls them for every
    store. The PostgreSQL store also relays other processes' ``ended`` and ``replied``
    through ``LISTEN``; other processes are found by polling. All of it happens on the event
    loop's thread (stores call these after their I/O returns), so waiters are woken directly.

    ``epoch`` is not None while every end is reported here (a memory store always; the
    PostgreSQL store while its ``LISTEN`` connection is up, with a new epoch after each
    reconnect): an execution created during one epoch cannot end unnoticed while it lasts,
    so its creator may wait for the notice without reading first.
    """

    def __init__(self, *, reliable: bool = False,
                 changes: Callable[[], Awaitable[int]] | None = None) -> None:
        self._changes = changes
        self._watch: asyncio.Task[None] | None = None
        self._waiters: set[asyncio.Future[None]] = set()
        self._watchers: dict[tuple[str, str], set[asyncio.Future[Outcome | None]]] = {}
        self._reply_watchers: dict[tuple[str, str, str], set[asyncio.Future[None]]] = {}
        self._recent: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._epochs = 0
        self.epoch: int | None = 0 if reliable else None
        self.generation = 0  # counts notifications, so a waiter misses none
        # counts this process's schedule writes: a scheduler pass due later is brought forward
        self.schedule_writes = 0

    def connected(self) -> None:
        """Every end is reported from now on (a new epoch begins)."""
        self._epochs += 1
        self.epoch = self._epochs

    def disconnected(self) -> None:
        """Ends may go unreported (the epoch is over): the result waiters read again, and
        then poll."""
        self.epoch = None
        self._read_again()

    def _read_again(self) -> None:
        """Wake every result waiter with None: "read the execution again"."""
        for watchers in self._watchers.values():
            for fut in watchers:
                if not fut.done():
                    fut.set_result(None)

    def ended_recently(self, tenant: str, workflow_id: str) -> bool:
        """Whether :meth:`ended` was called for the execution lately."""
        return (tenant, workflow_id) in self._recent

    def schedule_written(self) -> None:
        """A schedule was created or changed in this process: run schedules at once."""
        self.schedule_writes += 1
        self.notify()

    def notify(self) -> None:
        """Wake every poller waiting now."""
        self.generation += 1
        for fut in self._waiters:
            if not fut.done():
                fut.set_result(None)
        self._waiters.clear()

    async def wait(self, timeout: float, seen: int | None = None) -> None:
        """Return after a ``notify()`` or ``timeout`` seconds, whichever comes first.

        With ``seen`` (an earlier ``generation``), return at once if a notification came since.
        """
        if seen is not None and seen != self.generation:
            return
        fut = asyncio.get_running_loop().create_future()
        self._waiters.add(fut)
        self._watch_changes()
        try:
            # Not asyncio.wait_for: on Python 3.11 it swallows a cancellation that arrives as
            # the future completes (CPython gh-86296), and the cancelled poller polls on.
            await asyncio.wait((fut,), timeout=timeout)
        finally:
            self._waiters.discard(fut)

    def _watch_changes(self) -> None:
        """With ``changes`` (a counter other processes' commits move, such as SQLite's
        ``PRAGMA data_version``), poll it while anyone waits and, when it moves,
        :meth:`notify` and wake the result waiters (with None: "read again"): every 2 ms
        while things change, backing off to 50 ms when they do not."""
        if self._changes is not None and (self._watch is None or self._watch.done()):
            self._watch = asyncio.get_running_loop().create_task(self._watching(self._changes))

    @property
    def sees_changes(self) -> bool:
        """Whether other processes' commits wake this process's waiters (``changes``): a
        result waiter then re-reads when one is seen, and need not poll."""
        return self._changes is not None

    async def _watching(self, changes: Callable[[], Awaitable[int]]) -> None:
        seen, delay = await changes(), _FIRST_POLL
        while self._waiters or self._watchers:
            await asyncio.sleep(delay)
            current = await changes()
            if current != seen:
                seen, delay = current, _FIRST_POLL
                self.notify()
                self._read_again()
            else:
                delay = min(delay * 2, _LAST_POLL)

    async def close(self) -> None:
        """Stop watching for other processes' changes."""
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)

    def ended(self, tenant: str, workflow_id: str, outcome: Outcome | None = None) -> None:
        """Wake whoever watches the execution, with its outcome when it is known."""
        key = (tenant, workflow_id)
        self._recent[key] = None
        self._recent.move_to_end(key)
        if len(self._recent) > _RECENT_ENDS:
            self._recent.popitem(last=False)
        for fut in self._watchers.get(key, ()):
            if not fut.done():
                fut.set_result(outcome)

    @contextlib.contextmanager
    def watching(self, tenant: str,
                 workflow_id: str) -> Generator[asyncio.Future[Outcome | None]]:
        """A future that :meth:`ended` resolves (to the outcome, or None when the notice did
        not carry it); watch *before* reading the status, so that an end that happens in
        between is not missed."""
        key = (tenant, workflow_id)
        fut: asyncio.Future[Outcome | None] = asyncio.get_running_loop().create_future()
        self._watchers.setdefault(key, set()).add(fut)
        self._watch_changes()
        try:
            yield fut
        finally:
            watchers = self._watchers.get(key)
            if watchers is not None:
                watchers.discard(fut)
                if not watchers:
                    del self._watchers[key]

    def answered(self, tenant: str, workflow_id: str, replies: Sequence[Reply]) -> None:
        """:meth:`replied` for each of ``replies`` that finished its request."""
        for reply in replies:
            if reply.status in FINISHED_REQUESTS:
                self.replied(tenant, workflow_id, reply.id)

    def replied(self, tenant: str, workflow_id: str, request_id: str) -> None:
        """Wake whoever waits for the answer to the request."""
        for fut in self._reply_watchers.get((tenant, workflow_id, request_id), ()):
            if not fut.done():
                fut.set_result(None)

    @contextlib.contextmanager
    def watching_reply(self, tenant: str, workflow_id: str,
                       request_id: str) -> Generator[asyncio.Future[None]]:
        """A future that :meth:`replied` resolves (watch before reading the request)."""
        key = (tenant, workflow_id, request_id)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._reply_watchers.setdefault(key, set()).add(fut)
        try:
            yield fut
        finally:
            watchers = self._reply_watchers.get(key)
            if watchers is not None:
                watchers.discard(fut)
                if not watchers:
                    del self._reply_watchers[key]
