"""The PostgreSQL store's executions and histories (``ExecutionStore``).

Reads of single executions and of histories are grouped (``durable._batching.Batcher``):
concurrent calls go out as one statement. Creating an execution and appending an input are
one call each of a PL/pgSQL function, grouped with concurrent calls into one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
from msgspec.structs import replace

from ..._queues import route
from ..._batching import Batcher
from ..._history import Event, WorkflowStarted, encode_event
from ...errors import StoreUnavailableError, WorkflowNotFoundError
from .._integrity import scan
from .._records import ActionTask, ExecutionRecord, RunCheck, Signal, TimerRecord
from . import _statements as sql
from ._connection import PostgresBase
from ._rows import (
    EMPTY_DATA, NO_RESULT, action_from_row, first_checksum, history_from_rows, record_from_row,
    split_at_seq,
)
from ._schema import Target, redact

__all__ = ["PostgresExecutions"]


class PostgresExecutions(PostgresBase):
    """Executions and their histories in the ``executions`` and ``events`` tables."""

    def __init__(self, url: str, pool: asyncpg.Pool, target: Target) -> None:
        super().__init__(url, pool, target)
        self._histories: Batcher[tuple[str, str, int, str | None], list[Event]] = Batcher(
            self._read_histories, self._read_history, shared_errors=(StoreUnavailableError,))
        self._executions: Batcher[tuple[str, str], asyncpg.Record | None] = Batcher(
            self._select_executions, self._select_execution,
            shared_errors=(StoreUnavailableError,))

    async def create_execution(self, started: Event, *, now: float,
                               lease_to: tuple[str, float] | None = None,
                               ) -> tuple[ExecutionRecord, bool]:
        """Create an execution from its ``WorkflowStarted`` event (see ``Store``)."""
        if not isinstance(started, WorkflowStarted):
            raise TypeError(f"create_execution needs a WorkflowStarted event, not {started!r}")
        s = started
        await self._listen()  # before the execution exists, so that its end is heard
        body = encode_event(replace(s, seq=1, time=now))
        owner, lease_until = (None, None) if lease_to is None else lease_to
        if not await self._grouped(sql.CREATE_EXECUTION, s.tenant, s.workflow_id, s.run_id,
                                   route(s.workflow, s.queue), s.version, now, EMPTY_DATA,
                                   NO_RESULT, body, owner, lease_until, s.priority,
                                   s.fairness_key or "",
                                   first_checksum(s.tenant, s.workflow_id, s.run_id, body)):
            existing = await self.get_execution(s.tenant, s.workflow_id)
            if existing is None:  # deleted in between: the caller may simply try again
                raise StoreUnavailableError(
                    f"execution {s.workflow_id!r} of tenant {s.tenant!r} changed while being "
                    "created; try again", url=redact(self.url))
            return existing, False
        if lease_to is None:
            self.wakeup.notify()
        return ExecutionRecord(s.tenant, s.workflow_id, s.run_id, s.workflow, s.version,
                               "running", now, now, 1, queue=s.queue, priority=s.priority,
                               fairness_key=s.fairness_key), True

    async def restart_execution(self, started: Any, *, run_id: str, now: float,
                                end: Event | None = None,
                                signals: Sequence[Signal] = ()) -> bool:
        """Start the next run of an execution whose current run is ``run_id`` (see ``Store``)."""
        s = started
        head, tail = (None, None) if end is None else split_at_seq(end, now)
        body = encode_event(replace(s, seq=1, time=now))
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute(sql.LOCK_EXECUTIONS, [s.tenant, *(g.tenant for g in signals)],
                                   [s.workflow_id, *(g.workflow_id for g in signals)])
                restarted: bool = await conn.fetchval(
                    sql.RESTART, s.tenant, s.workflow_id, run_id, s.run_id,
                    route(s.workflow, s.queue), s.version, body, now, s.priority,
                    s.fairness_key or "", head, tail)
                if restarted:
                    for g in signals:
                        await conn.fetchval(sql.SIGNAL, g.tenant, g.workflow_id, g.run_id,
                                            *split_at_seq(g.event, now), g.dedup, now)
        except Exception as exc:
            raise await self._mapped(exc) from exc
        if restarted:
            self.wakeup.notify()
        return restarted

    async def get_execution(self, tenant: str, workflow_id: str) -> ExecutionRecord | None:
        """The execution, or None (and from here on, other processes' ends wake its waiters)."""
        await self._listen()
        row = await self._executions.submit((tenant, workflow_id))
        return None if row is None else record_from_row(row)

    async def _select_execution(self, key: tuple[str, str]) -> asyncpg.Record | None:
        return await self._fetchrow(sql.SELECT_EXECUTION, *key)

    async def _select_executions(self, keys: Sequence[tuple[str, str]],
                                 ) -> list[asyncpg.Record | None]:
        rows = await self._fetch(sql.SELECT_EXECUTIONS, [k[0] for k in keys], [k[1] for k in keys])
        found: list[asyncpg.Record | None] = [None] * len(keys)
        for row in rows:
            found[row[0] - 1] = row[1:]
        return found

    async def list_executions(self, tenant: str | None = None, *, status: str | None = None,
                              limit: int = 100) -> list[ExecutionRecord]:
        """Executions, newest first; all tenants when ``tenant`` is None."""
        if tenant is None:
            rows = await self._fetch(sql.LIST_ALL_EXECUTIONS, status, limit)
        else:
            rows = await self._fetch(sql.LIST_TENANT_EXECUTIONS, tenant, status, limit)
        return [record_from_row(row) for row in rows]

    async def scan_executions(self, tenant: str | None = None, *, workflow: str | None = None,
                              status: str | None = None, since: float | None = None,
                              after: ExecutionRecord | None = None,
                              limit: int = 500) -> list[ExecutionRecord]:
        """Executions oldest first, filtered and paged (see ``Store.scan_executions``)."""
        cursor = (None, None, None) if after is None else \
            (after.created_at, after.tenant, after.workflow_id)
        rows = await self._fetch(sql.SCAN_EXECUTIONS, tenant, workflow, status, since, *cursor,
                                 limit)
        return [record_from_row(row) for row in rows]

    async def read_history(self, tenant: str, workflow_id: str, *, run_id: str | None = None,
                           after_seq: int = 0, limit: int | None = None) -> list[Event]:
        """Events with ``seq > after_seq`` of the run (default: the current one), in order,
        once their rows are checked (see ``ExecutionStore``)."""
        if limit is not None:
            rows = await self._fetch(sql.SELECT_EVENTS_PAGE, tenant, workflow_id, run_id,
                                     after_seq, limit)
            return history_from_rows(tenant, workflow_id, run_id, after_seq, rows, limit)
        return await self._histories.submit((tenant, workflow_id, after_seq, run_id))

    async def _read_history(self, key: tuple[str, str, int, str | None]) -> list[Event]:
        tenant, workflow_id, after_seq, run_id = key
        rows = await self._fetch(sql.SELECT_EVENTS, tenant, workflow_id, run_id, after_seq)
        return history_from_rows(tenant, workflow_id, run_id, after_seq, rows)

    async def _read_histories(self, keys: Sequence[tuple[str, str, int, str | None]]
                              ) -> list[list[Event]]:
        """Many reads in one statement; damage in one raises (the batcher then reads each
        alone, so that only its caller gets the error)."""
        rows = await self._fetch(sql.SELECT_HISTORIES, [k[0] for k in keys],
                                 [k[1] for k in keys], [k[2] for k in keys], [k[3] for k in keys])
        found: list[list[Any]] = [[] for _ in keys]
        for row in rows:
            found[row[0] - 1].append(row[1:])
        return [history_from_rows(tenant, workflow_id, run_id, after_seq, got)
                for (tenant, workflow_id, after_seq, run_id), got in zip(keys, found)]

    async def verify_history(self, tenant: str, workflow_id: str) -> list[RunCheck]:
        """Check every row of every run of the execution."""
        runs: dict[str, list[tuple[int, bytes, bool | None]]] = {}
        last_seq, current = 0, ""
        for run_id, current, last_seq, seq, body, intact in await self._fetch(
                sql.VERIFY_HISTORY, tenant, workflow_id):
            rows = runs.setdefault(run_id, [])
            if seq is not None:
                rows.append((seq, body, intact))
        return [scan((tenant, workflow_id, run_id), rows, database_checked=True,
                     last_seq=last_seq if run_id == current else None)
                for run_id, rows in runs.items()]

    async def append_input(self, tenant: str, workflow_id: str, event: Event, *,
                           dedup: str | None = None, now: float) -> int | None:
        """Append an input at the next ``seq`` and make the execution runnable (see ``Store``)."""
        head, tail = split_at_seq(event, now)
        seq: int | None = await self._grouped(sql.APPEND, tenant, workflow_id, head, tail,
                                              dedup, now)
        if seq == 0:
            raise WorkflowNotFoundError(f"no execution {workflow_id!r} in tenant {tenant!r}",
                                        workflow_id=workflow_id, tenant=tenant)
        if seq is not None:
            self.wakeup.notify()
        return seq

    async def pending_work(self, tenant: str,
                           workflow_id: str) -> tuple[list[ActionTask], list[TimerRecord]]:
        """The execution's action tasks and timers that have not finished."""
        actions = await self._fetch(sql.PENDING_ACTIONS, tenant, workflow_id)
        timers = await self._fetch(sql.PENDING_TIMERS, tenant, workflow_id)
        return [action_from_row(row) for row in actions], [TimerRecord(*row) for row in timers]

    async def close(self) -> None:
        """Stop grouping reads, then close the connections (idempotent)."""
        await self._histories.close()
        await self._executions.close()
        await super().close()
