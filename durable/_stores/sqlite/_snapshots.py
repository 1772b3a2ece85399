"""The SQLite store's snapshots (``SnapshotStore``): statements and transactions."""

from __future__ import annotations

import sqlite3
from typing import Final

from .._records import Snapshot
from ._connection import SQLiteBase
from ._rows import decode_dict, encode

__all__ = ["SQLiteSnapshots"]

_COLUMNS: Final = "tenant, workflow_id, run_id, seq, time, status, state, data, suspended_at"
_SAVE: Final = (f"INSERT OR REPLACE INTO snapshots ({_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
# Keep the ?4 newest of the run: drop those older than the ?4-th newest.
_PRUNE: Final = (
    "DELETE FROM snapshots WHERE tenant = ?1 AND workflow_id = ?2 AND run_id = ?3 AND seq < "
    "(SELECT seq FROM snapshots WHERE tenant = ?1 AND workflow_id = ?2 AND run_id = ?3 "
    "ORDER BY seq DESC LIMIT 1 OFFSET ?4 - 1)")
_FIND: Final = (
    f"SELECT {_COLUMNS} FROM snapshots WHERE tenant = ?1 AND workflow_id = ?2 AND run_id = ?3 "
    "AND (?4 IS NULL OR seq <= ?4) AND (?5 IS NULL OR time <= ?5) ORDER BY seq DESC LIMIT 1")


class SQLiteSnapshots(SQLiteBase):
    """Snapshots in the ``snapshots`` table (migration 0004)."""

    async def save_snapshot(self, snapshot: Snapshot, *, keep: int) -> None:
        """Keep ``snapshot`` and prune its run to the ``keep`` newest (see ``SnapshotStore``)."""
        await self._write(_save_snapshot_txn, snapshot, keep)

    async def find_snapshot(self, tenant: str, workflow_id: str, run_id: str, *,
                            seq: int | None = None, time: float | None = None) -> Snapshot | None:
        """The run's newest snapshot at or before ``seq`` and ``time``."""
        return await self._run(_find_snapshot, (tenant, workflow_id, run_id), seq, time)


def _save_snapshot_txn(conn: sqlite3.Connection, snapshot: Snapshot, keep: int) -> None:
    """Store ``snapshot`` and prune its run to the ``keep`` newest (in the write transaction)."""
    s = snapshot
    run = (s.tenant, s.workflow_id, s.run_id)
    conn.execute(_SAVE, (*run, s.seq, s.time, s.status, s.state, encode(s.data),
                         s.suspended_at))
    conn.execute(_PRUNE, (*run, keep))


def _find_snapshot(conn: sqlite3.Connection, run: tuple[str, str, str], seq: int | None,
                   time: float | None) -> Snapshot | None:
    """The newest snapshot of ``run`` at or before ``seq`` and ``time``."""
    row = conn.execute(_FIND, (*run, seq, time)).fetchone()
    if row is None:
        return None
    tenant, workflow_id, run_id, at_seq, at_time, status, state, data, suspended_at = row
    return Snapshot(tenant, workflow_id, run_id, at_seq, at_time, status, state,
                    decode_dict(data), suspended_at)
