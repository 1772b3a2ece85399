"""The SQLite store's retention (``RetentionStore``, migration 0014): the same statements as
PostgreSQL's (``postgres._retention``), in SQLite's dialect; a delete is one write transaction."""

from __future__ import annotations

import sqlite3
from typing import Final, Mapping, Sequence

from .._retention import CHILD_TAG, RetentionSettings, Sweep, child_ids, children_of
from ._connection import SQLiteBase

__all__ = ["SQLiteRetention"]

_CLOSED: Final = "status IN ('completed', 'failed', 'cancelled')"

# ?1 now, ?2 default, ?3 fixed, ?4 tenant (NULL: all), ?5 limit.
_EXPIRED: Final = f"""
SELECT e.tenant, e.workflow_id FROM executions AS e
LEFT JOIN workflow_retention AS w ON NOT ?3 AND w.workflow = e.workflow
LEFT JOIN tenant_retention AS t ON NOT ?3 AND t.tenant = e.tenant
WHERE e.{_CLOSED}
  AND e.updated_at <= ?1 - CASE WHEN ?3 THEN ?2 ELSE min(
      ?2, coalesce((SELECT min(seconds) FROM workflow_retention), ?2),
      coalesce((SELECT min(seconds) FROM tenant_retention), ?2)) END
  AND (?4 IS NULL OR e.tenant = ?4)
  AND e.updated_at <= ?1 - coalesce(w.seconds, t.seconds, ?2)
ORDER BY e.updated_at
LIMIT ?5
"""
_CHILD_STARTS: Final = ("SELECT body FROM events WHERE tenant = ? AND workflow_id = ? "
                        "AND instr(substr(body, 1, 24), ?) BETWEEN 2 AND 4 ORDER BY run_id, seq")
_STARTED: Final = (f"SELECT e.body FROM executions AS x JOIN events AS e "
                   f"ON e.tenant = x.tenant AND e.workflow_id = x.workflow_id "
                   f"AND e.run_id = x.run_id AND e.seq = 1 "
                   f"WHERE x.tenant = ? AND x.workflow_id = ? AND x.{_CLOSED}")
_CLOSED_ONE: Final = f"SELECT 1 FROM executions WHERE tenant = ? AND workflow_id = ? AND {_CLOSED}"
# Every table whose rows belong to an execution (the conformance suite counts them all).
EXECUTION_TABLES: Final = ("executions", "events", "workflow_tasks", "action_tasks", "timers",
                           "requests", "snapshots")
_DELETE_ROWS: Final = [f"DELETE FROM {table} WHERE tenant = ? AND workflow_id = ?"
                       for table in EXECUTION_TABLES]
_DECLARE: Final = "INSERT OR REPLACE INTO workflow_retention (workflow, seconds) VALUES (?, ?)"
_FORGET: Final = "DELETE FROM workflow_retention WHERE workflow = ?"
_SET_TENANT: Final = "INSERT OR REPLACE INTO tenant_retention (tenant, seconds) VALUES (?, ?)"
_CLEAR_TENANT: Final = "DELETE FROM tenant_retention WHERE tenant = ?"


class SQLiteRetention(SQLiteBase):
    """Rows of ``workflow_retention`` and ``tenant_retention``; sweeps over ``executions``."""

    async def declare_retention(self, workflows: Mapping[str, float | None]) -> None:
        """Record (None: forget) how long each workflow's closed executions are kept."""
        await self._write(_declare_txn, dict(workflows))

    async def set_tenant_retention(self, tenant: str, seconds: float | None) -> None:
        """Set (None: clear) how long the tenant's closed executions are kept."""
        await self._write(_set_tenant_txn, tenant, seconds)

    async def retention_settings(self) -> RetentionSettings:
        """The workflows' and tenants' settings."""
        return await self._run(_settings)

    async def expired_executions(self, sweep: Sweep) -> list[tuple[str, str]]:
        """Closed executions past their retention, the oldest close first (see ``Sweep``)."""
        return await self._run(_expired, sweep)

    async def closed_children(self, tenant: str, workflow_id: str) -> list[str]:
        """The execution's closed children that name it as their parent."""
        return await self._run(_closed_children, tenant, workflow_id)

    async def delete_executions(self, tenant: str, workflow_ids: Sequence[str]) -> list[str]:
        """Delete the closed ones of these executions with all their rows (one transaction)."""
        return await self._write(_delete_txn, tenant, list(dict.fromkeys(workflow_ids)))


def _declare_txn(conn: sqlite3.Connection, workflows: dict[str, float | None]) -> None:
    for name, seconds in sorted(workflows.items()):
        if seconds is None:
            conn.execute(_FORGET, (name,))
        else:
            conn.execute(_DECLARE, (name, seconds))


def _set_tenant_txn(conn: sqlite3.Connection, tenant: str, seconds: float | None) -> None:
    if seconds is None:
        conn.execute(_CLEAR_TENANT, (tenant,))
    else:
        conn.execute(_SET_TENANT, (tenant, seconds))


def _settings(conn: sqlite3.Connection) -> RetentionSettings:
    workflows = conn.execute("SELECT workflow, seconds FROM workflow_retention").fetchall()
    tenants = conn.execute("SELECT tenant, seconds FROM tenant_retention").fetchall()
    return RetentionSettings(dict(workflows), dict(tenants))


def _expired(conn: sqlite3.Connection, sweep: Sweep) -> list[tuple[str, str]]:
    rows = conn.execute(_EXPIRED, (sweep.now, sweep.default, sweep.fixed, sweep.tenant,
                                   sweep.limit)).fetchall()
    return [(row[0], row[1]) for row in rows]


def _closed_children(conn: sqlite3.Connection, tenant: str, workflow_id: str) -> list[str]:
    bodies = conn.execute(_CHILD_STARTS, (tenant, workflow_id, CHILD_TAG)).fetchall()
    started: list[tuple[str, bytes]] = []
    for child in child_ids(row[0] for row in bodies):
        row = conn.execute(_STARTED, (tenant, child)).fetchone()
        if row is not None:
            started.append((child, row[0]))
    return children_of(workflow_id, started)


def _delete_txn(conn: sqlite3.Connection, tenant: str, workflow_ids: list[str]) -> list[str]:
    deleted = [w for w in workflow_ids if conn.execute(_CLOSED_ONE, (tenant, w)).fetchone()]
    for statement in _DELETE_ROWS:
        conn.executemany(statement, [(tenant, w) for w in deleted])
    return deleted
