"""The SQLite store's schedules (a mixin of ``SQLiteStore``; same concurrency model)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any, Final, TypeVar

from .._schedule_records import ScheduleRecord, decode_schedule, encode_schedule

__all__ = ["SQLiteSchedules"]

T = TypeVar("T")

_SELECT: Final = "SELECT body FROM schedules WHERE tenant = ? AND schedule_id = ?"
_INSERT: Final = ("INSERT INTO schedules (tenant, schedule_id, revision, next_check, body) "
                  "VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant, schedule_id) DO NOTHING")
_LIST_TENANT: Final = ("SELECT body FROM schedules WHERE tenant = ? "
                       "ORDER BY tenant, schedule_id LIMIT ?")
_LIST_ALL: Final = "SELECT body FROM schedules ORDER BY tenant, schedule_id LIMIT ?"
_UPDATE: Final = ("UPDATE schedules SET revision = ?, next_check = ?, body = ? "
                  "WHERE tenant = ? AND schedule_id = ? AND revision = ?")
_UPDATE_OWNED: Final = ("UPDATE schedules SET revision = ?, next_check = ?, body = ? "
                        "WHERE tenant = ? AND schedule_id = ? AND revision = ? AND owner = ?")
_UPDATE_RELEASED: Final = ("UPDATE schedules SET revision = ?, next_check = ?, body = ?, "
                           "owner = NULL, lease_until = 0 "
                           "WHERE tenant = ? AND schedule_id = ? AND revision = ? AND owner = ?")
_DELETE: Final = "DELETE FROM schedules WHERE tenant = ? AND schedule_id = ?"
_SELECT_DUE: Final = ("SELECT tenant, schedule_id FROM schedules WHERE due <= ? "
                      "ORDER BY due LIMIT ?")
_SELECT_DUE_KEY: Final = ("SELECT tenant, schedule_id FROM schedules "
                          "WHERE tenant = ? AND schedule_id = ? AND due <= ?")
_LEASE: Final = ("UPDATE schedules SET owner = ?, lease_until = ? "
                 "WHERE tenant = ? AND schedule_id = ? RETURNING body")
_NEXT_CHECK: Final = "SELECT min(due) FROM schedules"


class SQLiteSchedules:
    """Schedules in the ``schedules`` table (migration 0005)."""

    _run: Callable[..., Any]
    _write: Callable[..., Any]

    async def create_schedule(self, record: ScheduleRecord, *,
                              next_check: float | None) -> tuple[ScheduleRecord, bool]:
        """Insert the schedule unless its id is taken (see ``Store``)."""
        found: tuple[ScheduleRecord, bool] = await self._write(_create_txn, record, next_check)
        return found

    async def get_schedule(self, tenant: str, schedule_id: str) -> ScheduleRecord | None:
        """The schedule, or None."""
        found: ScheduleRecord | None = await self._run(_get, tenant, schedule_id)
        return found

    async def list_schedules(self, tenant: str | None = None, *,
                             limit: int = 100) -> list[ScheduleRecord]:
        """Schedules by tenant and id; all tenants when ``tenant`` is None."""
        found: list[ScheduleRecord] = await self._run(_list, tenant, limit)
        return found

    async def update_schedule(self, record: ScheduleRecord, *, next_check: float | None,
                              owner: str | None = None, release: bool = True) -> bool:
        """Compare-and-set on the revision (and the lease, with ``owner``)."""
        key = (record.tenant, record.schedule_id, record.revision - 1)
        head = (record.revision, next_check, encode_schedule(record))
        if owner is None:
            return bool(await self._write(_changed, _UPDATE, (*head, *key)))
        statement = _UPDATE_RELEASED if release else _UPDATE_OWNED
        return bool(await self._write(_changed, statement, (*head, *key, owner)))

    async def delete_schedule(self, tenant: str, schedule_id: str) -> bool:
        """Delete the schedule; False if there was none."""
        return bool(await self._write(_changed, _DELETE, (tenant, schedule_id)))

    async def claim_schedules(self, owner: str, *, lease: float, now: float, limit: int,
                              key: tuple[str, str] | None = None) -> list[ScheduleRecord]:
        """Lease due schedules no live lease holds (see ``Store``)."""
        if limit <= 0:
            return []
        found: list[ScheduleRecord] = await self._run(_claim, owner, now, now + lease, limit, key)
        return found

    async def next_schedule_check(self) -> float | None:
        """The earliest time a schedule needs a scheduler."""
        due: float | None = await self._run(_scalar, _NEXT_CHECK)
        return due


def _changed(conn: sqlite3.Connection, statement: str, params: tuple[Any, ...]) -> bool:
    return conn.execute(statement, params).rowcount > 0


def _scalar(conn: sqlite3.Connection, statement: str) -> Any:
    return conn.execute(statement).fetchone()[0]


def _get(conn: sqlite3.Connection, tenant: str, schedule_id: str) -> ScheduleRecord | None:
    row = conn.execute(_SELECT, (tenant, schedule_id)).fetchone()
    return None if row is None else decode_schedule(row[0])


def _list(conn: sqlite3.Connection, tenant: str | None, limit: int) -> list[ScheduleRecord]:
    rows = (conn.execute(_LIST_ALL, (limit,)) if tenant is None
            else conn.execute(_LIST_TENANT, (tenant, limit)))
    return [decode_schedule(body) for (body,) in rows]


def _create_txn(conn: sqlite3.Connection, record: ScheduleRecord,
                next_check: float | None) -> tuple[ScheduleRecord, bool]:
    params = (record.tenant, record.schedule_id, record.revision, next_check,
              encode_schedule(record))
    if conn.execute(_INSERT, params).rowcount > 0:
        return record, True
    existing = _get(conn, record.tenant, record.schedule_id)
    assert existing is not None  # under the write lock
    return existing, False


def _claim(conn: sqlite3.Connection, owner: str, now: float, until: float, limit: int,
           key: tuple[str, str] | None) -> list[ScheduleRecord]:
    from ._store import _in_transaction

    select = (_SELECT_DUE, (now, limit)) if key is None else (_SELECT_DUE_KEY, (*key, now))
    if not conn.execute(*select).fetchall():
        return []  # nothing due: do not take the write lock (idle pollers stay cheap)
    return _in_transaction(conn, _claim_txn, select, owner, until)


def _claim_txn(conn: sqlite3.Connection, select: tuple[str, tuple[Any, ...]], owner: str,
               until: float) -> list[ScheduleRecord]:
    claimed = []
    for tenant, schedule_id in conn.execute(*select).fetchall():
        (body,) = conn.execute(_LEASE, (owner, until, tenant, schedule_id)).fetchone()
        claimed.append(decode_schedule(body))
    return claimed
