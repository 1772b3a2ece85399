"""The SQLite store's action heartbeats (``HeartbeatStore``): details on the task's row."""

from __future__ import annotations

import sqlite3

from .._records import ActionTask
from ._connection import Row, SQLiteBase, changed
from ._rows import action_key

__all__ = ["SQLiteHeartbeats"]

_KEY = "tenant = ? AND workflow_id = ? AND run_id = ? AND cmd = ?"
_RECORD = (f"UPDATE action_tasks SET heartbeat_details = ?, lease_until = ? WHERE {_KEY} "
           "AND owner = ?")
_READ = f"SELECT heartbeat_details FROM action_tasks WHERE {_KEY}"


class SQLiteHeartbeats(SQLiteBase):
    """Heartbeat details in ``action_tasks.heartbeat_details``."""

    async def record_action_heartbeat(self, task: ActionTask, owner: str, details: bytes, *,
                                      lease: float, now: float) -> bool:
        """Keep ``details`` on the task and its lease alive; False if the lease was lost."""
        params = (details, now + lease, *action_key(task), owner)
        return await self._write(changed, _RECORD, params)

    async def action_heartbeat_details(self, task: ActionTask) -> bytes | None:
        """The details of the task's last recorded heartbeat."""
        found = await self._run(_read, action_key(task))
        return None if found is None else bytes(found)


def _read(conn: sqlite3.Connection, key: Row) -> bytes | None:
    row = conn.execute(_READ, key).fetchone()
    return None if row is None else row[0]
