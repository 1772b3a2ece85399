"""The SQLite store's requests: queries and updates, and their answers (``RequestStore``).

Every function here runs on the store's thread with its connection; the ``*_txn`` ones inside
the caller's write transaction (``BEGIN IMMEDIATE``), so their read-check-write is atomic.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Final

from msgspec.structs import replace

from ...errors import WorkflowNotFoundError
from .._records import TERMINAL_STATUSES, Reply, Request
from . import _statements as sql
from ._connection import Row, SQLiteBase, changed
from ._rows import decode_any, decode_error, decode_list, encode

__all__ = ["SQLiteRequests", "answer_txn"]

_SELECT_HEAD: Final = ("SELECT workflow, status FROM executions "
                       "WHERE tenant = ? AND workflow_id = ?")
_COLUMNS: Final = "tenant, workflow_id, id, kind, name, args, created_at, status, result, error"
_SELECT_REQUEST: Final = (f"SELECT {_COLUMNS} FROM requests "
                          "WHERE tenant = ? AND workflow_id = ? AND id = ?")
_INSERT_REQUEST: Final = (f"INSERT OR REPLACE INTO requests ({_COLUMNS}) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', NULL, NULL)")
_PENDING_REQUESTS: Final = (f"SELECT {_COLUMNS} FROM requests WHERE tenant = ? "
                            "AND workflow_id = ? AND status = 'pending' ORDER BY created_at, id")
# Invariant: a request is answered once; only pending or accepted ones change.
_ANSWER_REQUEST: Final = ("UPDATE requests SET status = ?, result = ?, error = ? WHERE tenant = ? "
                          "AND workflow_id = ? AND id = ? AND status IN ('pending', 'accepted')")
_DELETE_REQUEST: Final = "DELETE FROM requests WHERE tenant = ? AND workflow_id = ? AND id = ?"
_REQUEST_WORKFLOW_TASK: Final = (
    "INSERT INTO workflow_tasks (tenant, workflow_id, workflow, visible_at, dispatched_at, "
    f"requested, priority, fairness_key) VALUES (?1, ?2, ?3, ?4, ?4, 1, {sql.TASK_FLOW}) "
    "ON CONFLICT (tenant, workflow_id) DO UPDATE SET "
    "visible_at = min(visible_at, excluded.visible_at), dispatched_at = excluded.dispatched_at, "
    "requested = 1")
_HAS_WORKFLOW_TASK: Final = "SELECT 1 FROM workflow_tasks WHERE tenant = ? AND workflow_id = ?"


class SQLiteRequests(SQLiteBase):
    """Requests in the ``requests`` table (migration 0003)."""

    async def submit_request(self, request: Request, *, now: float) -> tuple[Request | None, bool]:
        """Record a query or update and make the execution runnable (see ``RequestStore``)."""
        stored, made = await self._write(_submit_request_txn, request, now)
        if made:
            self.wakeup.notify()
        return stored, made

    async def get_request(self, tenant: str, workflow_id: str, request_id: str) -> Request | None:
        """The request, or None."""
        return await self._run(_get_request, tenant, workflow_id, request_id)

    async def rearm_request(self, tenant: str, workflow_id: str, request_id: str, *,
                            now: float) -> bool:
        """Make a runnable task for a pending request that has none (see ``RequestStore``)."""
        if not await self._run(_needs_rearm, tenant, workflow_id, request_id):
            return False  # the common case: a read, no write lock
        made = await self._write(_rearm_txn, tenant, workflow_id, request_id, now)
        if made:
            self.wakeup.notify()
        return made

    async def pending_requests(self, tenant: str, workflow_id: str) -> list[Request]:
        """The execution's requests no worker has answered or accepted, oldest first."""
        rows = await self._run(_fetch_all, _PENDING_REQUESTS, (tenant, workflow_id))
        return [_request_from_row(row) for row in rows]

    async def answer_requests(self, tenant: str, workflow_id: str, replies: Sequence[Reply], *,
                              now: float) -> None:
        """Record ``replies`` for requests not answered yet."""
        if replies:
            await self._write(answer_txn, tenant, workflow_id, replies)
            self.wakeup.answered(tenant, workflow_id, replies)

    async def forget_request(self, tenant: str, workflow_id: str, request_id: str) -> None:
        """Delete the request."""
        await self._write(changed, _DELETE_REQUEST, (tenant, workflow_id, request_id))


def _fetch_all(conn: sqlite3.Connection, statement: str, params: Row) -> list[Row]:
    return conn.execute(statement, params).fetchall()


def _request_from_row(row: Row) -> Request:
    tenant, workflow_id, request_id, kind, name, args, created_at, status, result, error = row
    return Request(tenant, workflow_id, request_id, kind, name, decode_list(args), created_at,
                   status, None if result is None else decode_any(result),
                   None if error is None else decode_error(error))


def _get_request(conn: sqlite3.Connection, tenant: str, workflow_id: str,
                 request_id: str) -> Request | None:
    row = conn.execute(_SELECT_REQUEST, (tenant, workflow_id, request_id)).fetchone()
    return None if row is None else _request_from_row(row)


def _submit_request_txn(conn: sqlite3.Connection, new: Request,
                        now: float) -> tuple[Request | None, bool]:
    """Record ``new`` unless its id is known (a rejected update is replaced); make it runnable."""
    key = (new.tenant, new.workflow_id)
    head = conn.execute(_SELECT_HEAD, key).fetchone()
    if head is None:
        raise WorkflowNotFoundError(f"no execution {new.workflow_id!r} in tenant "
                                    f"{new.tenant!r}", workflow_id=new.workflow_id,
                                    tenant=new.tenant)
    workflow, status = head
    stored = _get_request(conn, *key, new.id)
    if stored is None or stored.status == "rejected":
        if new.kind == "update" and status in TERMINAL_STATUSES:
            return None, False
        stored = replace(new, created_at=now, status="pending", result=None, error=None)
        conn.execute(_INSERT_REQUEST, (*key, new.id, new.kind, new.name, encode(new.args), now))
    if stored.status != "pending":
        return stored, False
    conn.execute(_REQUEST_WORKFLOW_TASK, (*key, workflow, now))
    return stored, True


def _needs_rearm(conn: sqlite3.Connection, tenant: str, workflow_id: str,
                 request_id: str) -> bool:
    """Whether the request is pending while its execution has no workflow task."""
    found = _get_request(conn, tenant, workflow_id, request_id)
    return (found is not None and found.status == "pending"
            and conn.execute(_HAS_WORKFLOW_TASK, (tenant, workflow_id)).fetchone() is None)


def _rearm_txn(conn: sqlite3.Connection, tenant: str, workflow_id: str, request_id: str,
               now: float) -> bool:
    """Make a requested workflow task for a pending request that has none."""
    if not _needs_rearm(conn, tenant, workflow_id, request_id):
        return False
    workflow = conn.execute(_SELECT_HEAD, (tenant, workflow_id)).fetchone()[0]
    conn.execute(_REQUEST_WORKFLOW_TASK, (tenant, workflow_id, workflow, now))
    return True


def answer_txn(conn: sqlite3.Connection, tenant: str, workflow_id: str,
               replies: Sequence[Reply]) -> None:
    """Record replies; answered requests keep their answer (``_ANSWER_REQUEST``)."""
    conn.executemany(_ANSWER_REQUEST, [
        (r.status, None if r.result is None else encode(r.result),
         None if r.error is None else encode(r.error), tenant, workflow_id, r.id)
        for r in replies])
