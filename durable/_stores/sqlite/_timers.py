"""The SQLite store's timers and outbox (``TimerStore``).

Each due timer is deleted and its ``TimerFired`` appended in the same write transaction, so it
fires exactly once however many processes poll; a plain read first keeps idle polls off the
write lock.
"""

from __future__ import annotations

import sqlite3

from ..._history import TimerFired
from .._backlog import Backlog, ReadyCount, announced_mark
from .._records import TaskRef, workflow_ref
from . import _statements as sql
from ._connection import Row, SQLiteBase, in_transaction, scalar
from ._executions import append_txn

__all__ = ["SQLiteTimers"]


class SQLiteTimers(SQLiteBase):
    """Timers in the ``timers`` table; the outbox over both task tables."""

    async def fire_due_timers(self, *, now: float, limit: int) -> list[TaskRef]:
        """Record ``TimerFired`` for up to ``limit`` timers due on the store's clock (each
        exactly once)."""
        fired = await self._run(_fire_due_timers, now, self._store_time(now), limit)
        if fired:
            self.wakeup.notify()
        return fired

    async def dispatch_due(self, *, now: float, older_than: float, limit: int) -> list[TaskRef]:
        """The outbox: hints for claimable tasks last dispatched over ``older_than`` s ago."""
        if limit <= 0:
            return []
        return await self._run(_dispatch_due, (now - older_than, now, limit))

    async def refresh_statistics(self) -> list[str]:
        """Nothing to refresh: without statistics SQLite's planner takes the indexes, and this
        store never gathers any (``TimerStore``)."""
        return []

    async def rebuild_bloated_indexes(self) -> list[str]:
        """Nothing to rebuild: SQLite's B-trees reuse the pages they free (``TimerStore``)."""
        return []

    async def backlog(self, *, now: float) -> Backlog:
        """Ready tasks no worker holds, by kind and route, and the timers due (``TimerStore``)."""
        rows = await self._run(_rows, sql.BACKLOG, (now, now, self._store_time(now)))
        ready = sorted(ReadyCount(kind, name, n) for kind, name, n in rows if kind != "timers")
        return Backlog(ready, sum(n for kind, _, n in rows if kind == "timers"))

    async def next_wakeup(self, *, now: float) -> float | None:
        """The earliest time a timer, a delayed task or a schedule becomes due (None if nothing
        waits); a timer's on the caller's clock, ``now`` plus its time left on the store's."""
        shift = now - self._store_time(now)  # type: ignore[operator]
        return await self._run(scalar, sql.NEXT_WAKEUP, (shift,))

    async def next_timer(self, *, now: float) -> float | None:
        """When the earliest timer fires (None if none waits), on the caller's clock."""
        shift = now - self._store_time(now)  # type: ignore[operator]
        return await self._run(scalar, sql.NEXT_TIMER, (shift,))


def _rows(conn: sqlite3.Connection, statement: str, params: tuple[object, ...]) -> list[Row]:
    return conn.execute(statement, params).fetchall()


def _fire_due_timers(conn: sqlite3.Connection, now: float, store_now: float,
                     limit: int) -> list[TaskRef]:
    if not conn.execute(sql.SELECT_DUE_TIMERS, (store_now, limit)).fetchall():
        return []  # nothing due: do not take the write lock
    return in_transaction(conn, _fire_txn, now, store_now, limit)


def _fire_txn(conn: sqlite3.Connection, now: float, store_now: float,
              limit: int) -> list[TaskRef]:
    """Delete each timer due at ``store_now`` and record its ``TimerFired`` in the same
    transaction, stamped with the earlier of the two clocks (see ``TimerStore``)."""
    due = conn.execute(sql.SELECT_DUE_TIMERS, (store_now, limit)).fetchall()
    now = min(now, store_now)
    for tenant, workflow_id, run_id, cmd in due:
        conn.execute(sql.DELETE_TIMER, (tenant, workflow_id, run_id, cmd))
        append_txn(conn, tenant, workflow_id, TimerFired(0, now, cmd), f"t{run_id}/{cmd}", now)
    return [workflow_ref(tenant, workflow_id) for tenant, workflow_id, _, _ in due]


def _by_priority(refs: list[tuple[int, TaskRef]]) -> list[TaskRef]:
    """Hints (each after its negated priority) higher priority first, else in the order given."""
    return [ref for _, ref in sorted(refs, key=lambda item: item[0])]


def _dispatch_due(conn: sqlite3.Connection, query: Row) -> list[TaskRef]:
    if not (conn.execute(sql.SELECT_UNDISPATCHED_WORKFLOW_TASKS, query).fetchone()
            or conn.execute(sql.SELECT_UNDISPATCHED_ACTIONS, query).fetchone()):
        return []  # nothing to announce: do not take the write lock
    return in_transaction(conn, _dispatch_due_txn, query)


def _dispatch_due_txn(conn: sqlite3.Connection, query: Row) -> list[TaskRef]:
    """Mark up to ``limit`` undispatched claimable tasks dispatched now; return their hints,
    higher priority first."""
    announced_before, now, limit = query
    older_than = now - announced_before
    rows = conn.execute(sql.SELECT_UNDISPATCHED_WORKFLOW_TASKS, query).fetchall()
    conn.executemany(sql.MARK_WORKFLOW_TASK_DISPATCHED,
                     [(announced_mark(now, row[4], older_than), *row[:2]) for row in rows])
    refs = [(-priority, workflow_ref(tenant, workflow_id, stored))
            for tenant, workflow_id, stored, priority, _ in rows]
    if len(refs) < limit:
        actions = conn.execute(sql.SELECT_UNDISPATCHED_ACTIONS, query[:2] + (limit - len(refs),))
        for tenant, workflow_id, name, run_id, cmd, priority, due in actions.fetchall():
            conn.execute(sql.MARK_ACTION_DISPATCHED, (announced_mark(now, due, older_than),
                                                      tenant, workflow_id, run_id, cmd))
            refs.append((-priority, TaskRef("a", tenant, workflow_id, name, run_id, cmd)))
    return _by_priority(refs)

