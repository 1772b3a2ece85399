"""The SQLite store's record of what live workers host (``HostStore``, migration 0007)."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection
from typing import Final

from ._connection import SQLiteBase

__all__ = ["SQLiteHosts"]

_FORGET: Final = "DELETE FROM worker_hosts WHERE worker = ?"
_INSERT: Final = "INSERT OR REPLACE INTO worker_hosts (kind, route, worker, seen_at) VALUES (?, ?, ?, ?)"
_LIVE: Final = "SELECT 1 FROM worker_hosts WHERE kind = ? AND route = ? AND seen_at >= ? LIMIT 1"


class SQLiteHosts(SQLiteBase):
    """Rows of ``worker_hosts``: (kind, route, worker, seen_at)."""

    async def register_hosts(self, worker: str, hosts: Collection[tuple[str, str]], *,
                             now: float) -> None:
        """Record that ``worker`` hosts ``hosts`` ((kind, route) pairs) as of ``now``."""
        await self._write(_register_txn, worker, list(hosts), now)

    async def unregister_hosts(self, worker: str) -> None:
        """Forget what ``worker`` hosts (it stopped)."""
        await self._write(_register_txn, worker, [], 0.0)

    async def unhosted(self, hosts: Collection[tuple[str, str]], *,
                       since: float) -> set[tuple[str, str]]:
        """The (kind, route) pairs of ``hosts`` that no worker seen since ``since`` hosts."""
        return await self._run(_unhosted, list(hosts), since)


def _register_txn(conn: sqlite3.Connection, worker: str, hosts: list[tuple[str, str]],
                  now: float) -> None:
    conn.execute(_FORGET, (worker,))
    conn.executemany(_INSERT, [(kind, route, worker, now) for kind, route in hosts])


def _unhosted(conn: sqlite3.Connection, hosts: list[tuple[str, str]],
              since: float) -> set[tuple[str, str]]:
    return {(kind, route) for kind, route in hosts
            if conn.execute(_LIVE, (kind, route, since)).fetchone() is None}
