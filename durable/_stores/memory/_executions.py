"""The memory store's executions and histories (``ExecutionStore``)."""

from __future__ import annotations

from bisect import bisect_left
from typing import Any, Sequence

from ..._history import Event
from ...errors import WorkflowNotFoundError
from .._integrity import Row, checked, scan
from .._listing import LIST_STATUSES, Cursor, ExecutionQuery, cursor_of, matches
from .._records import (
    TERMINAL_STATUSES, ActionTask, ExecutionRecord, RunCheck, Signal, TimerRecord,
)
from ._state import MemoryState

__all__ = ["MemoryExecutions"]


def _scan_key(record: ExecutionRecord) -> tuple[float, str, str]:
    return record.created_at, record.tenant, record.workflow_id


def _seq(row: Row) -> int:
    return row[0]


class MemoryExecutions(MemoryState):
    """Executions and their histories, in the state's dicts."""

    async def create_execution(self, started: Any, *, now: float,
                               lease_to: tuple[str, float] | None = None,
                               ) -> tuple[ExecutionRecord, bool]:
        """Create an execution from its ``WorkflowStarted`` event (see ``ExecutionStore``)."""
        record, created = self._create(started, now)
        if created and lease_to is not None:
            held = self._wf_tasks[(started.tenant, started.workflow_id)]
            held.owner, held.until, held.attempt = lease_to[0], lease_to[1], 1
        elif created:
            self.wakeup.notify()
        return record, created

    async def restart_execution(self, started: Any, *, run_id: str, now: float,
                                end: Event | None = None,
                                signals: Sequence[Signal] = ()) -> bool:
        """Start the next run of an execution whose current run is ``run_id`` (see
        ``ExecutionStore``)."""
        key = (started.tenant, started.workflow_id)
        record = self._executions.get(key)
        if record is None or record.run_id != run_id:
            return False
        if record.status not in TERMINAL_STATUSES:
            if end is None:
                return False
            self._append(*key, end, None, now)
        self._drop_run_work((*key, run_id))
        self._executions[key] = record = ExecutionRecord(
            *key, started.run_id, started.workflow, started.version, "running", now, now, 1,
            queue=started.queue, priority=started.priority, fairness_key=started.fairness_key)
        self._begin_run(record, started, now)
        for signal in signals:
            self._append(signal.tenant, signal.workflow_id, signal.event, signal.dedup, now,
                         signal.run_id)
        self.wakeup.notify()
        return True

    async def get_execution(self, tenant: str, workflow_id: str) -> ExecutionRecord | None:
        """The execution, or None."""
        return self._executions.get((tenant, workflow_id))

    async def list_executions(self, tenant: str | None = None, *, status: str | None = None,
                              limit: int = 100) -> list[ExecutionRecord]:
        """Executions, newest first; all tenants when ``tenant`` is None."""
        rows = [r for r in self._executions.values()
                if (tenant is None or r.tenant == tenant)
                and (status is None or r.status == status)]
        rows.sort(key=lambda r: (r.created_at, r.workflow_id), reverse=True)
        return rows[:limit]

    async def scan_executions(self, tenant: str | None = None, *, workflow: str | None = None,
                              status: str | None = None, since: float | None = None,
                              after: ExecutionRecord | None = None,
                              limit: int = 500) -> list[ExecutionRecord]:
        """Executions oldest first, filtered and paged (see ``ExecutionStore``)."""
        cursor = None if after is None else _scan_key(after)
        rows = [r for r in self._executions.values()
                if (tenant is None or r.tenant == tenant)
                and (workflow is None or r.workflow == workflow)
                and (status is None or r.status == status)
                and (since is None or r.created_at >= since)
                and (cursor is None or _scan_key(r) > cursor)]
        rows.sort(key=_scan_key)
        return rows[:limit]

    async def page_executions(self, query: ExecutionQuery, *, after: Cursor | None = None,
                              limit: int = 50) -> list[ExecutionRecord]:
        """Up to ``limit`` executions after the cursor, newest first (``_listing``)."""
        rows = [r for r in self._executions.values() if matches(r, query, self._run_count(r))
                and (after is None or cursor_of(r) < after)]
        rows.sort(key=cursor_of, reverse=True)
        return rows[:limit]

    async def count_executions(self, query: ExecutionQuery, *, cap: int) -> dict[str, int]:
        """How many executions of each status match (``query.status`` aside), each at most
        ``cap``."""
        return {status: min(cap, sum(matches(r, query, self._run_count(r), status)
                                     for r in self._executions.values()))
                for status in LIST_STATUSES}

    def _run_count(self, record: ExecutionRecord) -> int:
        return len(self._runs.get((record.tenant, record.workflow_id), ())) or 1

    async def read_history(self, tenant: str, workflow_id: str, *, run_id: str | None = None,
                           after_seq: int = 0, limit: int | None = None) -> list[Event]:
        """Events with ``seq > after_seq`` of the run (default: the current one), in order,
        once their rows are checked (see ``ExecutionStore``)."""
        record = self._executions.get((tenant, workflow_id))
        if record is None:
            return []
        run = (tenant, workflow_id, run_id or record.run_id)
        rows = self._histories.get(run, [])
        start = bisect_left(rows, after_seq, key=_seq)  # the anchor (seq after_seq), if any
        stop = len(rows) if limit is None else min(len(rows), start + limit + (after_seq > 0))
        current, end = run[2] == record.run_id, stop == len(rows)
        return checked(run, rows[start:stop], after_seq=after_seq,
                       last_seq=record.last_seq if current and end else None)

    async def verify_history(self, tenant: str, workflow_id: str) -> list[RunCheck]:
        """Check every row of every run of the execution."""
        record = self._executions.get((tenant, workflow_id))
        if record is None:
            return []
        checks: list[RunCheck] = []
        for run_id in self._runs.get((tenant, workflow_id), []):
            current = run_id == record.run_id
            checks.append(scan((tenant, workflow_id, run_id),
                               self._histories.get((tenant, workflow_id, run_id), []),
                               last_seq=record.last_seq if current else None))
        return checks

    async def append_input(self, tenant: str, workflow_id: str, event: Event, *,
                           dedup: str | None = None, now: float) -> int | None:
        """Append an input at the next ``seq`` and make the execution runnable."""
        if (tenant, workflow_id) not in self._executions:
            raise WorkflowNotFoundError(f"no execution {workflow_id!r} in tenant {tenant!r}",
                                        workflow_id=workflow_id, tenant=tenant)
        seq = self._append(tenant, workflow_id, event, dedup, now)
        if seq is not None:
            self.wakeup.notify()
        return seq

    async def pending_work(self, tenant: str,
                           workflow_id: str) -> tuple[list[ActionTask], list[TimerRecord]]:
        """The execution's action tasks and timers that have not finished."""
        actions = [t for t, _ in self._actions.values()
                   if t.tenant == tenant and t.workflow_id == workflow_id]
        timers = [t for t in self._timers.values()
                  if t.tenant == tenant and t.workflow_id == workflow_id]
        return sorted(actions, key=lambda t: t.cmd), sorted(timers, key=lambda t: t.cmd)
