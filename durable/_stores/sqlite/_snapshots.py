"""The SQLite store's snapshots: statements and transactions (run on the store's thread)."""

from __future__ import annotations

import sqlite3
from typing import Any, Final

import msgspec

from .._records import Snapshot

__all__ = ["find_snapshot", "save_snapshot_txn"]

_encode: Final = msgspec.msgpack.Encoder().encode
_decode_dict: Final = msgspec.msgpack.Decoder(dict[str, Any]).decode

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


def save_snapshot_txn(conn: sqlite3.Connection, snapshot: Snapshot, keep: int) -> None:
    """Store ``snapshot`` and prune its run to the ``keep`` newest (in the write transaction)."""
    s = snapshot
    run = (s.tenant, s.workflow_id, s.run_id)
    conn.execute(_SAVE, (*run, s.seq, s.time, s.status, s.state, _encode(s.data),
                         s.suspended_at))
    conn.execute(_PRUNE, (*run, keep))


def find_snapshot(conn: sqlite3.Connection, run: tuple[str, str, str], seq: int | None,
                  time: float | None) -> Snapshot | None:
    """The newest snapshot of ``run`` at or before ``seq`` and ``time``."""
    row = conn.execute(_FIND, (*run, seq, time)).fetchone()
    if row is None:
        return None
    tenant, workflow_id, run_id, at_seq, at_time, status, state, data, suspended_at = row
    return Snapshot(tenant, workflow_id, run_id, at_seq, at_time, status, state,
                    _decode_dict(data), suspended_at)
