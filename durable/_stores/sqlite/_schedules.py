"""The SQLite store's schedules (``ScheduleStore``), in the ``schedules`` table.

A claim first looks for due schedules with a plain read and takes the write lock only when
there is one; updates are compare-and-set on the revision (and the lease).
"""

from __future__ import annotations

import sqlite3
from typing import Any, Final

from .._schedule_records import ScheduleRecord, decode_schedule, encode_schedule
from ._connection import SQLiteBase, changed, in_transaction, scalar

__all__ = ["SQLiteSchedules"]

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


class SQLiteSchedules(SQLiteBase):
    """Schedules in the ``schedules`` table (migration 0005)."""

    async def create_schedule(self, record: ScheduleRecord, *,
                              next_check: float | None) -> tuple[ScheduleRecord, bool]:
        """Insert the schedule unless its id is taken (see ``Store``)."""
        return await self._write(_create_txn, record, next_check)

    async def get_schedule(self, tenant: str, schedule_id: str) -> ScheduleRecord | None:
        """The schedule, or None."""
        return await self._run(_get, tenant, schedule_id)

    async def list_schedules(self, tenant: str | None = None, *,
                             limit: int = 100) -> list[ScheduleRecord]:
        """Schedules by tenant and id; all tenants when ``tenant`` is None."""
        return await self._run(_list, tenant, limit)

    async def update_schedule(self, record: ScheduleRecord, *, next_check: float | None,
                              owner: str | None = None, release: bool = True) -> bool:
        """Compare-and-set on the revision (and the lease, with ``owner``)."""
        key = (record.tenant, record.schedule_id, record.revision - 1)
        head = (record.revision, next_check, encode_schedule(record))
        if owner is None:
            return await self._write(changed, _UPDATE, (*head, *key))
        statement = _UPDATE_RELEASED if release else _UPDATE_OWNED
        return await self._write(changed, statement, (*head, *key, owner))

    async def delete_schedule(self, tenant: str, schedule_id: str) -> bool:
        """Delete the schedule; False if there was none."""
        return await self._write(changed, _DELETE, (tenant, schedule_id))

    async def claim_schedules(self, owner: str, *, lease: float, now: float, limit: int,
                              key: tuple[str, str] | None = None) -> list[ScheduleRecord]:
        """Lease due schedules no live lease holds (see ``Store``)."""
        if limit <= 0:
            return []
        return await self._run(_claim, owner, now, now + lease, limit, key)

    async def next_schedule_check(self) -> float | None:
        """The earliest time a schedule needs a scheduler."""
        due: float | None = await self._run(scalar, _NEXT_CHECK, ())
        return due


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
    select = (_SELECT_DUE, (now, limit)) if key is None else (_SELECT_DUE_KEY, (*key, now))
    if not conn.execute(*select).fetchall():
        return []  # nothing due: do not take the write lock (idle pollers stay cheap)
    return in_transaction(conn, _claim_txn, select, owner, until)


def _claim_txn(conn: sqlite3.Connection, select: tuple[str, tuple[Any, ...]], owner: str,
               until: float) -> list[ScheduleRecord]:
    claimed: list[ScheduleRecord] = []
    for tenant, schedule_id in conn.execute(*select).fetchall():
        (body,) = conn.execute(_LEASE, (owner, until, tenant, schedule_id)).fetchone()
        claimed.append(decode_schedule(body))
    return claimed
