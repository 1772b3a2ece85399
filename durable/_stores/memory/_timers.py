"""The memory store's timers and outbox (``TimerStore``)."""

from __future__ import annotations

from collections import Counter

from ..._history import TimerFired
from ..._queues import route
from .._backlog import Backlog, ReadyCount, announced_mark
from .._records import TaskRef, action_ref, workflow_ref
from ._state import MemoryState

__all__ = ["MemoryTimers"]


class MemoryTimers(MemoryState):
    """Due timers fired, undispatched tasks announced, the next due time found."""

    async def fire_due_timers(self, *, now: float, limit: int) -> list[TaskRef]:
        """Record ``TimerFired`` for up to ``limit`` timers due on the store's clock (each
        exactly once)."""
        store_now: float = self._store_time(now)  # type: ignore[assignment]
        due = sorted((t for t in self._timers.values() if t.fire_at <= store_now),
                     key=lambda t: t.fire_at)[:limit]
        now = min(now, store_now)  # a caller ahead must not hide the task from the others
        # (see TimerStore.fire_due_timers)
        appended = False
        for timer in due:
            del self._timers[(timer.tenant, timer.workflow_id, timer.run_id, timer.cmd)]
            seq = self._append(timer.tenant, timer.workflow_id, TimerFired(0, now, timer.cmd),
                               f"t{timer.run_id}/{timer.cmd}", now)
            appended = appended or seq is not None
        if appended:
            self.wakeup.notify()
        return [workflow_ref(t.tenant, t.workflow_id) for t in due]

    async def dispatch_due(self, *, now: float, older_than: float, limit: int) -> list[TaskRef]:
        """The outbox: hints for claimable tasks last dispatched over ``older_than`` s ago."""
        refs: list[tuple[int, TaskRef]] = []  # (-priority, hint): higher priority first
        for key, held in self._wf_tasks.items():
            if len(refs) < limit and held.claimable(now) and held.dispatched_at <= now - older_than:
                held.dispatched_at = announced_mark(now, held.due, older_than)
                record = self._executions[key]
                refs.append((-record.priority,
                             workflow_ref(*key, route(record.workflow, record.queue))))
        for task, held in self._actions.values():
            if len(refs) < limit and held.claimable(now) and held.dispatched_at <= now - older_than:
                held.dispatched_at = announced_mark(now, held.due, older_than)
                refs.append((-task.priority, action_ref(task)))
        return [ref for _, ref in sorted(refs, key=lambda item: item[0])]

    async def refresh_statistics(self) -> list[str]:
        """Nothing to refresh: no planner (``TimerStore``)."""
        return []

    async def rebuild_bloated_indexes(self) -> list[str]:
        """Nothing to rebuild: no indexes on disk (``TimerStore``)."""
        return []

    async def backlog(self, *, now: float) -> Backlog:
        """Ready tasks no worker holds, by kind and route, and the timers due (``TimerStore``)."""
        counts: Counter[tuple[str, str]] = Counter()
        for key, held in self._wf_tasks.items():
            if held.owner is None and held.visible_at <= now:
                record = self._executions[key]
                counts["workflow", route(record.workflow, record.queue)] += 1
        for task, held in self._actions.values():
            if held.owner is None and held.visible_at <= now:
                counts["action", route(task.name, task.queue)] += 1
        store_now: float = self._store_time(now)  # type: ignore[assignment]
        due = sum(1 for t in self._timers.values() if t.fire_at <= store_now)
        return Backlog([ReadyCount(*key, n) for key, n in sorted(counts.items())], due)

    async def next_wakeup(self, *, now: float) -> float | None:
        """The earliest time a timer, a delayed task or a schedule becomes due (a timer's on
        the caller's clock: ``now`` plus its time left on the store's)."""
        times = self._fires(now)
        times += [held.due for _, held in self._actions.values()]
        times += [held.due for held in self._wf_tasks.values()]
        times += self._schedule_checks()
        return min(times, default=None)

    async def next_timer(self, *, now: float) -> float | None:
        """When the earliest timer fires (None if none waits), on the caller's clock."""
        return min(self._fires(now), default=None)

    def _fires(self, now: float) -> list[float]:
        """When each timer fires, on the caller's clock (``now`` plus its time left)."""
        shift = now - self._store_time(now)  # type: ignore[operator]
        return [t.fire_at + shift for t in self._timers.values()]
