"""The SQLite store's executions and histories (``ExecutionStore``).

The ``*_txn`` functions here are the store's primitive writes (create an execution, begin a
run, append an input): they run inside the caller's write transaction, and the commit, the
timers and the action outcomes write through them too. Every event row they write carries its
chained checksum (``insert_events_txn``); every read checks the rows it returns
(``_integrity``).
"""

from __future__ import annotations

import sqlite3
from typing import Any, Sequence

from msgspec.structs import replace

from ..._history import Event, WorkflowStarted, encode_event
from ..._queues import route
from ...errors import WorkflowNotFoundError
from .._integrity import checked, chain, scan
from .._records import (
    TERMINAL_STATUSES, ActionTask, ExecutionRecord, RunCheck, Signal, TimerRecord,
)
from . import _statements as sql
from ._connection import Row, SQLiteBase, in_read_transaction
from ._rows import action_from_row, encode, record_from_row

__all__ = ["SQLiteExecutions", "append_txn", "begin_run_txn", "create_txn", "drop_run_work_txn",
           "insert_events_txn", "signal_txn"]


class SQLiteExecutions(SQLiteBase):
    """Executions and their histories in the ``executions`` and ``events`` tables."""

    async def create_execution(self, started: Event, *, now: float,
                               lease_to: tuple[str, float] | None = None,
                               ) -> tuple[ExecutionRecord, bool]:
        """Create an execution from its ``WorkflowStarted`` event (see ``Store``)."""
        if not isinstance(started, WorkflowStarted):
            raise TypeError(f"create_execution needs a WorkflowStarted event, not {started!r}")
        record, created = await self._write(create_txn, started, now, lease_to)
        if created and lease_to is None:
            self.wakeup.notify()
        return record, created

    async def restart_execution(self, started: Any, *, run_id: str, now: float,
                                end: Event | None = None,
                                signals: Sequence[Signal] = ()) -> bool:
        """Start the next run of an execution whose current run is ``run_id`` (see ``Store``)."""
        restarted = await self._write(_restart_txn, started, run_id, now, end, signals)
        if restarted:
            self.wakeup.notify()
        return restarted

    async def get_execution(self, tenant: str, workflow_id: str) -> ExecutionRecord | None:
        """The execution, or None."""
        return await self._run(_get_execution, tenant, workflow_id)

    async def list_executions(self, tenant: str | None = None, *, status: str | None = None,
                              limit: int = 100) -> list[ExecutionRecord]:
        """Executions, newest first; all tenants when ``tenant`` is None."""
        return await self._run(_list_executions, tenant, status, limit)

    async def scan_executions(self, tenant: str | None = None, *, workflow: str | None = None,
                              status: str | None = None, since: float | None = None,
                              after: ExecutionRecord | None = None,
                              limit: int = 500) -> list[ExecutionRecord]:
        """Executions oldest first, filtered and paged (see ``Store.scan_executions``)."""
        cursor = (None, None, None) if after is None else \
            (after.created_at, after.tenant, after.workflow_id)
        return await self._run(_scan_executions, (tenant, workflow, status, since, *cursor, limit))

    async def read_history(self, tenant: str, workflow_id: str, *, run_id: str | None = None,
                           after_seq: int = 0, limit: int | None = None) -> list[Event]:
        """Events with ``seq > after_seq`` of the run (default: the current one), in order."""
        return await self._run(in_read_transaction, _read_history_txn, tenant, workflow_id,
                               run_id, after_seq, limit)

    async def verify_history(self, tenant: str, workflow_id: str) -> list[RunCheck]:
        """Check every row of every run of the execution."""
        return await self._run(in_read_transaction, _verify_history_txn, tenant, workflow_id)

    async def append_input(self, tenant: str, workflow_id: str, event: Event, *,
                           dedup: str | None = None, now: float) -> int | None:
        """Append an input at the next ``seq`` and make the execution runnable (see ``Store``)."""
        seq = await self._write(append_txn, tenant, workflow_id, event, dedup, now)
        if seq is not None:
            self.wakeup.notify()
        return seq

    async def pending_work(self, tenant: str,
                           workflow_id: str) -> tuple[list[ActionTask], list[TimerRecord]]:
        """The execution's action tasks and timers that have not finished."""
        return await self._run(in_read_transaction, _pending_work_txn, tenant, workflow_id)


def _get_execution(conn: sqlite3.Connection, tenant: str,
                   workflow_id: str) -> ExecutionRecord | None:
    row = conn.execute(sql.SELECT_EXECUTION, (tenant, workflow_id)).fetchone()
    return None if row is None else record_from_row(row)


def _list_executions(conn: sqlite3.Connection, tenant: str | None, status: str | None,
                     limit: int) -> list[ExecutionRecord]:
    rows = conn.execute(sql.LIST_ALL_EXECUTIONS, (status, limit)) if tenant is None \
        else conn.execute(sql.LIST_TENANT_EXECUTIONS, (tenant, status, limit))
    return [record_from_row(row) for row in rows]


def _scan_executions(conn: sqlite3.Connection, params: tuple[Any, ...]) -> list[ExecutionRecord]:
    return [record_from_row(row) for row in conn.execute(sql.SCAN_EXECUTIONS, params)]


def _read_history_txn(conn: sqlite3.Connection, tenant: str, workflow_id: str,
                      run_id: str | None, after_seq: int, limit: int | None) -> list[Event]:
    """The checked events of a run (one read transaction: the rows and the execution's last
    seq agree)."""
    head = conn.execute(sql.SELECT_HEAD, (tenant, workflow_id)).fetchone()
    if head is None:
        return []
    run = (tenant, workflow_id, run_id or head[0])
    wanted = -1 if limit is None else limit + (after_seq > 0)  # and the anchor
    rows = conn.execute(sql.SELECT_ROWS, (*run, after_seq, wanted)).fetchall()
    end = limit is None or len(rows) < wanted
    return checked(run, rows, after_seq=after_seq,
                   last_seq=head[3] if end and run[2] == head[0] else None)


def _verify_history_txn(conn: sqlite3.Connection, tenant: str,
                        workflow_id: str) -> list[RunCheck]:
    head = conn.execute(sql.SELECT_HEAD, (tenant, workflow_id)).fetchone()
    if head is None:
        return []
    run_ids = [r for (r,) in conn.execute(sql.SELECT_RUN_IDS, (tenant, workflow_id))]
    checks: list[RunCheck] = []
    for run_id in run_ids if head[0] in run_ids else [*run_ids, head[0]]:
        rows = conn.execute(sql.SELECT_ROWS, (tenant, workflow_id, run_id, 0, -1)).fetchall()
        checks.append(scan((tenant, workflow_id, run_id), rows,
                           last_seq=head[3] if run_id == head[0] else None))
    return checks


def insert_events_txn(conn: sqlite3.Connection, run: Row, events: list[Event],
                      dedup: str | None = None) -> bool:
    """Insert a run's next events (their seqs set), each with its checksum chained to the row
    before; False when the first one's ``dedup`` key was seen in the run (then none of them
    is written)."""
    first = events[0].seq
    prev = None if first == 1 else _checksum(conn, run, first - 1)
    bodies = [encode_event(e) for e in events]
    rows = [(*run, e.seq, dedup if e.seq == first else None, body, checksum)
            for e, body, checksum in zip(events, bodies, chain(run, prev, bodies))]
    if conn.executemany(sql.INSERT_INPUT, rows).rowcount == len(rows):
        return True
    if len(rows) > 1:  # the first was a duplicate: take back the others
        conn.execute(sql.DELETE_EVENTS_FROM, (*run, first))
    return False


def _checksum(conn: sqlite3.Connection, run: Row, seq: int) -> int | None:
    row = conn.execute(sql.SELECT_CHECKSUM, (*run, seq)).fetchone()
    return None if row is None else row[0]


def create_txn(conn: sqlite3.Connection, started: WorkflowStarted, now: float,
               lease_to: tuple[str, float] | None = None) -> tuple[ExecutionRecord, bool]:
    """Create an execution and its first run unless its workflow id is taken (then return
    the existing one and False); ``lease_to`` leases its first workflow task at once."""
    existing = _get_execution(conn, started.tenant, started.workflow_id)
    if existing is not None:
        return existing, False
    key = (started.tenant, started.workflow_id)
    conn.execute(sql.INSERT_EXECUTION, (*key, started.run_id,
                                        route(started.workflow, started.queue), started.version,
                                        "running", now, now, 1, None, encode({}), encode(None),
                                        None, None, started.priority, started.fairness_key or ""))
    begin_run_txn(conn, started, now)
    if lease_to is not None:
        conn.execute(sql.LEASE_WORKFLOW_TASK, (*lease_to, *key))
    return ExecutionRecord(*key, started.run_id, started.workflow, started.version, "running",
                           now, now, 1, queue=started.queue, priority=started.priority,
                           fairness_key=started.fairness_key), True


def begin_run_txn(conn: sqlite3.Connection, started: WorkflowStarted, now: float) -> None:
    """Write a run's ``WorkflowStarted`` (seq 1) and make the execution runnable."""
    key = (started.tenant, started.workflow_id)
    insert_events_txn(conn, (*key, started.run_id), [replace(started, seq=1, time=now)])
    conn.execute(sql.UPSERT_WORKFLOW_TASK, (*key, route(started.workflow, started.queue), now))


def append_txn(conn: sqlite3.Connection, tenant: str, workflow_id: str, event: Event,
               dedup: str | None, now: float, run_id: str | None = None) -> int | None:
    """Append an input at the next seq (the caller holds the write lock).

    With ``run_id``, only while that is the execution's current run.
    """
    head = conn.execute(sql.SELECT_HEAD, (tenant, workflow_id)).fetchone()
    if head is None:
        raise WorkflowNotFoundError(f"no execution {workflow_id!r} in tenant {tenant!r}",
                                    workflow_id=workflow_id, tenant=tenant)
    current_run, workflow, status, last_seq = head
    if status in TERMINAL_STATUSES or (run_id is not None and run_id != current_run):
        return None
    seq: int = last_seq + 1
    if not insert_events_txn(conn, (tenant, workflow_id, current_run),
                             [replace(event, seq=seq, time=now)], dedup):
        return None  # the dedup key was seen before
    conn.execute(sql.ADVANCE_EXECUTION, (seq, now, tenant, workflow_id))
    conn.execute(sql.UPSERT_WORKFLOW_TASK, (tenant, workflow_id, workflow, now))
    return seq


def _restart_txn(conn: sqlite3.Connection, started: WorkflowStarted, run_id: str, now: float,
                 end: Event | None, signals: Sequence[Signal]) -> bool:
    key = (started.tenant, started.workflow_id)
    head = conn.execute(sql.SELECT_HEAD, key).fetchone()
    if head is None or head[0] != run_id:
        return False
    if head[2] not in TERMINAL_STATUSES:
        if end is None:
            return False
        append_txn(conn, *key, end, None, now)
    drop_run_work_txn(conn, (*key, run_id))
    conn.execute(sql.DELETE_WORKFLOW_TASK, key)
    conn.execute(sql.RESTART_RUN, (started.run_id, route(started.workflow, started.queue),
                                   started.version, now, encode({}), encode(None),
                                   started.priority, started.fairness_key or "", *key))
    begin_run_txn(conn, started, now)
    for signal in signals:
        signal_txn(conn, signal, now)
    return True


def drop_run_work_txn(conn: sqlite3.Connection, run: Row) -> None:
    """Drop a run's action tasks and timers."""
    conn.execute(sql.DELETE_RUN_ACTIONS, run)
    conn.execute(sql.DELETE_RUN_TIMERS, run)


def signal_txn(conn: sqlite3.Connection, signal: Signal, now: float) -> None:
    """Append a commit's ``Signal`` (skipped where the protocol says)."""
    try:
        append_txn(conn, signal.tenant, signal.workflow_id, signal.event, signal.dedup, now,
                   signal.run_id)
    except WorkflowNotFoundError:
        pass


def _pending_work_txn(conn: sqlite3.Connection, tenant: str,
                      workflow_id: str) -> tuple[list[ActionTask], list[TimerRecord]]:
    key = (tenant, workflow_id)
    actions = [action_from_row(row) for row in conn.execute(sql.PENDING_ACTIONS, key)]
    timers = [TimerRecord(*row) for row in conn.execute(sql.PENDING_TIMERS, key)]
    return actions, timers

