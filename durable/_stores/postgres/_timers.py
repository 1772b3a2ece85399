"""The PostgreSQL store's timers and outbox (``TimerStore``).

Each is one statement that locks with ``FOR UPDATE SKIP LOCKED``: any number of servers and
workers take disjoint timers and tasks, and a timer fires (is deleted and its ``TimerFired``
appended) exactly once.
"""

from __future__ import annotations

from typing import Final

import asyncpg

from ..._history import TimerFired
from .._backlog import Backlog, ReadyCount
from .._records import TaskRef, workflow_ref
from . import _statements as sql
from ._connection import PostgresBase
from ._rows import split_at_seq

__all__ = ["PostgresTimers"]

_ANALYZE_LOCK_TIMEOUT: Final = "100ms"  # autovacuum (or another server) analyzing: let it
_REBUILD_TIMEOUT: Final = "30s"  # a rebuild waiting this long for old transactions gives up


class PostgresTimers(PostgresBase):
    """Timers in the ``timers`` table; the outbox over both task tables."""

    async def fire_due_timers(self, *, now: float, limit: int) -> list[TaskRef]:
        """Record ``TimerFired`` for up to ``limit`` timers due on the store's clock (the
        server's, unless the store was given another) (each exactly once)."""
        if limit <= 0:
            return []
        # Invariant: a TimerFired is [tag, seq, time, cmd]; the function appends the rest.
        head, _ = split_at_seq(TimerFired(0, now, 0), now)
        rows = await self._fetch(sql.FIRE_DUE_TIMERS, now, limit, head, self._store_time(now))
        if rows:
            self.wakeup.notify()
        return [workflow_ref(tenant, workflow_id) for tenant, workflow_id in rows]

    async def dispatch_due(self, *, now: float, older_than: float, limit: int) -> list[TaskRef]:
        """The outbox: hints for claimable tasks last dispatched over ``older_than`` s ago."""
        if limit <= 0:
            return []
        rows = await self._fetch(sql.DISPATCH_DUE, now, now - older_than, limit)
        return [TaskRef(*row) for row in rows]

    async def refresh_statistics(self) -> list[str]:
        """ANALYZE the queue tables that grew past what the planner last counted
        (``TimerStore``); a table being analyzed already is left to that."""
        analyzed: list[str] = []
        for row in await self._fetch(sql.GROWN_TABLES):
            table: str = row[0]
            try:
                async with self._pool.acquire() as conn, conn.transaction():
                    await conn.execute(f"SET LOCAL lock_timeout = '{_ANALYZE_LOCK_TIMEOUT}'")
                    await conn.execute(f'ANALYZE "{table}"')  # a name read from pg_class
            except asyncpg.LockNotAvailableError:
                continue
            except Exception as exc:
                raise await self._mapped(exc) from exc
            analyzed.append(table)
        return analyzed

    async def rebuild_bloated_indexes(self) -> list[str]:
        """``REINDEX TABLE CONCURRENTLY`` each task table with an index that is mostly empty
        pages (``TimerStore``); one caller at a time (an advisory lock), each statement given
        ``_REBUILD_TIMEOUT``. An interrupted rebuild leaves an invalid index, dropped first."""
        rebuilt: list[str] = []
        try:
            async with self._pool.acquire() as conn:
                if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", sql.REBUILD_LOCK):
                    return []
                try:
                    await conn.execute(f"SET statement_timeout = '{_REBUILD_TIMEOUT}'")
                    for (table,) in await conn.fetch(sql.BLOATED_TABLES):
                        for (index,) in await conn.fetch(sql.LEFT_HALF_MADE, table):
                            await conn.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{index}"')
                        await conn.execute(f'REINDEX TABLE CONCURRENTLY "{table}"')
                        rebuilt.append(table)
                finally:
                    await conn.execute("RESET statement_timeout")
                    await conn.execute("SELECT pg_advisory_unlock($1)", sql.REBUILD_LOCK)
        except Exception as exc:
            raise await self._mapped(exc) from exc
        return rebuilt

    async def backlog(self, *, now: float) -> Backlog:
        """Ready tasks no worker holds, by kind and route, and the timers due (``TimerStore``)."""
        rows = await self._fetch(sql.BACKLOG, now, self._store_time(now))
        ready = sorted(ReadyCount(kind, name, n) for kind, name, n in rows if kind != "timers")
        return Backlog(ready, sum(n for kind, _, n in rows if kind == "timers"))

    async def next_wakeup(self, *, now: float) -> float | None:
        """The earliest time a timer, a delayed task or a schedule becomes due (None if nothing
        waits); a timer's on the caller's clock, ``now`` plus its time left on the store's."""
        due: float | None = await self._fetchval(sql.NEXT_WAKEUP, now, self._store_time(now))
        return due

    async def next_timer(self, *, now: float) -> float | None:
        """When the earliest timer fires (None if none waits), on the caller's clock."""
        due: float | None = await self._fetchval(sql.NEXT_TIMER, now, self._store_time(now))
        return due
