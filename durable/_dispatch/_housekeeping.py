"""``Housekeeper``: the chores that make waiting work runnable again, and retention, for
whoever runs them.

Four chores, each safe to run from any number of processes at once (the store hands
concurrent callers disjoint sets, so there is no lock of our own), each returning the hints
(``TaskRef``) of what it made runnable:

* timers: ``TimerStore.fire_due_timers`` records each due timer's ``TimerFired`` once;
* the outbox: ``TimerStore.dispatch_due`` hands out claimable tasks whose last dispatch is
  older than ``redispatch_after`` (a hint lost in Redis, a dead worker's expired lease, a due
  retry or release);
* schedules: ``Scheduler.run_due`` starts the runs of due schedules (each due time once); the
  next pass is due when the next schedule is, or after ``schedule_poll`` seconds at the
  latest (how soon a schedule created by another process is seen);
* retention: ``durable._retention.sweep`` deletes closed executions past their retention, a
  batch per pass, the next pass at once while batches come full, else after ``gc_every``.

And two that return no hints: ``TimerStore.refresh_statistics`` (every ``STATISTICS_EVERY``
seconds at most) lets the store's planner see a queue that grew, before the claims and outbox
passes that read it; ``TimerStore.rebuild_bloated_indexes`` (every ``REBUILD_EVERY`` seconds,
``durable server`` only) rebuilds a queue's indexes that churn left mostly empty.

Two runners use it: the embedded dispatcher (``LocalDispatcher``) fires timers and runs due
schedules before it claims, and needs no hints (the store's wake-ups reach its pollers);
``durable server`` runs each chore in a loop of its own (the statistics in the outbox's) and
publishes the hints.
"""

from __future__ import annotations

import math
from typing import Final

from .._clock import SYSTEM_CLOCK, Clock
from .._retention import DEFAULT_RETENTION, GC_BATCH, GC_EVERY, sweep
from .._schedules._scheduler import Scheduler
from .._stores import Store, Sweep, TaskRef

__all__ = ["SCHEDULE_POLL", "Housekeeper"]

SCHEDULE_POLL: Final = 1.0  # seconds: how soon a schedule created by another process is seen
STATISTICS_EVERY: Final = 1.0  # seconds between looks at the queues' planner statistics
REBUILD_EVERY: Final = 60.0  # seconds between looks at the queues' indexes


class Housekeeper:
    """Fires due timers, hands out the outbox and runs due schedules of ``store``.

    ``batch`` is how many timers or tasks one store call takes; ``owner`` names the
    scheduler in schedule leases (a fresh name by default); ``clock`` is the time new runs
    are created at. ``retention`` is how long closed executions are kept unless their
    workflow or tenant says otherwise (None: for ever), swept every ``gc_every`` seconds.
    """

    def __init__(self, store: Store, *, batch: int = 100, redispatch_after: float = 2.0,
                 schedule_poll: float = SCHEDULE_POLL, owner: str | None = None,
                 clock: Clock = SYSTEM_CLOCK, retention: float | None = DEFAULT_RETENTION,
                 gc_every: float = GC_EVERY) -> None:
        self.store = store
        self.batch = batch
        self.redispatch_after = redispatch_after
        self.schedule_poll = schedule_poll
        self.scheduler = Scheduler(store, owner=owner, clock=clock)
        self.next_schedule_pass = 0.0  # when run_schedules should look at the schedules again
        self._schedule_writes = 0  # store.wakeup.schedule_writes when run_schedules last ran
        self.retention = math.inf if retention is None else retention
        self.gc_every = gc_every
        self.next_gc_pass = 0.0  # when collect_garbage should run again
        self.next_statistics_pass = 0.0  # when refresh_statistics_if_due should look again
        self.next_rebuild_pass = 0.0  # when rebuild_indexes_if_due should look again

    async def fire_timers(self, now: float) -> list[TaskRef]:
        """Fire up to ``batch`` due timers; the hints of their workflows."""
        return await self.store.fire_due_timers(now=now, limit=self.batch)

    async def until_next_timer(self, now: float, *, at_most: float) -> float:
        """Seconds until the next timer fires, at most ``at_most``.

        Tasks, due or delayed, are the outbox's business (its own loop announces them once
        due): they do not shorten the wait, and are not read (``TimerStore.next_timer``).
        """
        due = await self.store.next_timer(now=now)
        return at_most if due is None or due <= now else min(due - now, at_most)

    async def redispatch(self, now: float) -> list[TaskRef]:
        """Up to ``batch`` hints from the outbox, marked dispatched at ``now``."""
        return await self.store.dispatch_due(now=now, older_than=self.redispatch_after,
                                             limit=self.batch)

    async def refresh_statistics_if_due(self, now: float) -> list[str]:
        """``Store.refresh_statistics`` every ``STATISTICS_EVERY`` seconds at most: the
        planner follows a queue that grows (a backlog arrives) within a second or so."""
        if now < self.next_statistics_pass:
            return []
        self.next_statistics_pass = now + STATISTICS_EVERY
        return await self.store.refresh_statistics()

    async def rebuild_indexes_if_due(self, now: float) -> list[str]:
        """``Store.rebuild_bloated_indexes`` every ``REBUILD_EVERY`` seconds at most. A rebuild
        waits for open transactions: ``durable server`` asks from its retention loop, and the
        embedded dispatcher, whose claims it would hold up, does not."""
        if now < self.next_rebuild_pass:
            return []
        self.next_rebuild_pass = now + REBUILD_EVERY
        return await self.store.rebuild_bloated_indexes()

    async def run_schedules(self, now: float) -> list[TaskRef]:
        """Process a batch of due schedules; the hints of the runs they started or cancelled.

        Sets :attr:`next_schedule_pass`: when the next schedule is due, or ``schedule_poll``
        seconds from ``now``, whichever comes first.
        """
        self._schedule_writes = self.store.wakeup.schedule_writes
        refs = await self.scheduler.run_due(now)
        due = await self.scheduler.next_check()
        self.next_schedule_pass = min(now + self.schedule_poll, math.inf if due is None else due)
        return refs

    async def run_schedules_if_due(self, now: float) -> list[TaskRef]:
        """:meth:`run_schedules`, once :attr:`next_schedule_pass` has come or a schedule was
        written in this process since the last pass."""
        if now < self.next_schedule_pass and \
                self.store.wakeup.schedule_writes == self._schedule_writes:
            return []
        return await self.run_schedules(now)

    async def collect_garbage(self, now: float) -> list[tuple[str, str]]:
        """Delete a batch of closed executions past their retention (with their closed
        children); (tenant, workflow id) of each deleted. Sets :attr:`next_gc_pass`."""
        swept = await sweep(self.store, Sweep(now, self.retention, limit=GC_BATCH))
        self.next_gc_pass = now if swept.more and swept.deleted else now + self.gc_every
        return swept.deleted

    async def collect_garbage_if_due(self, now: float) -> list[tuple[str, str]]:
        """:meth:`collect_garbage`, once :attr:`next_gc_pass` has come."""
        return [] if now < self.next_gc_pass else await self.collect_garbage(now)
