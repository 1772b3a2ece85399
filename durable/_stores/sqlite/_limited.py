"""The SQLite store's claims of limited actions (``TaskStore.claim_limited``, see
``durable._limits``): one write transaction, which every process takes in turn."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection
from typing import Final

from ..._limits import Limit, refill, room, waits
from .._records import ActionTask
from ._connection import SQLiteBase
from ._tasks import _claim_action_txn

__all__ = ["SQLiteLimited"]

_BUCKET: Final = "SELECT tokens, refilled_at FROM flow_buckets WHERE route = ?"
_RUNNING: Final = ("SELECT count(*) FROM action_tasks "
                   "WHERE name = ? AND owner IS NOT NULL AND lease_until > ?")
_TAKE: Final = ("INSERT INTO flow_buckets (route, tokens, refilled_at, max_concurrent, rate) "
                "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (route) DO UPDATE SET tokens = ?2, "
                "refilled_at = max(refilled_at, ?3), max_concurrent = ?4, rate = ?5")
_STATE: Final = ("SELECT b.route, b.max_concurrent, b.rate, b.tokens, b.refilled_at, "
                 "(SELECT count(*) FROM action_tasks AS a WHERE a.name = b.route "
                 "AND a.owner IS NOT NULL AND a.lease_until > ?2) "
                 "FROM flow_buckets AS b WHERE b.route = ?1")


class SQLiteLimited(SQLiteBase):
    """Claims under an action's limits."""

    async def claim_limited(self, route: str, limit: Limit, owner: str, *, lease: float,
                            now: float, limit_count: int = 0) -> list[ActionTask]:
        """Lease up to ``limit_count`` due tasks of action ``route`` within ``limit``."""
        return await self._write(_claim_limited_txn, route, limit, owner, now, now + lease,
                                 limit_count)

    async def limit_waits(self, routes: Collection[str], *, now: float) -> dict[str, str]:
        """Why tasks of these action routes wait for their limits, by route (none: no wait)."""
        return await self._run(_limit_waits, list(routes), now)


def _limit_waits(conn: sqlite3.Connection, routes: list[str], now: float) -> dict[str, str]:
    rows = [row for route in routes for row in conn.execute(_STATE, (route, now)).fetchall()]
    return waits(rows, now)


def _claim_limited_txn(conn: sqlite3.Connection, route: str, limit: Limit, owner: str,
                       now: float, until: float, count: int) -> list[ActionTask]:
    row = conn.execute(_BUCKET, (route,)).fetchone()
    tokens = refill(limit, None if row is None else row[0], now if row is None else row[1], now)
    running = 0 if limit.max_concurrent is None else \
        conn.execute(_RUNNING, (route, now)).fetchone()[0]
    wanted = room(limit, running, tokens, count)
    claimed = [] if wanted <= 0 else _claim_action_txn(
        conn, (now, json.dumps([route]), wanted), owner, until)
    conn.execute(_TAKE, (route, tokens - len(claimed), now, *limit))
    return claimed
