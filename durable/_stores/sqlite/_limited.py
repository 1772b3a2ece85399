"""The SQLite store's claims of limited actions (``TaskStore.claim_limited``) and holds of
slots and tokens for inline attempts (``TaskStore.hold_limited``), see ``durable._limits``:
each one write transaction, which every process takes in turn."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Sequence
from typing import Final

from ..._limits import Hold, Limit, RouteLimit, grant, queue_prefix, refill, room, waits
from ..._queues import SEP
from .._records import ActionTask
from ._connection import SQLiteBase
from ._tasks import _claim_action_txn

__all__ = ["SQLiteLimited"]

_BUCKET: Final = "SELECT tokens, refilled_at FROM flow_buckets WHERE route = ?"
# Running in a bucket: its leased tasks (of the action, or of every action on the queue) and
# the slots held in it by workers other than ?3 (NULL: every worker).
_HELD: Final = ("(SELECT coalesce(sum(slots), 0) FROM flow_holds "
                "WHERE bucket = ?1 AND until > ?2 AND owner IS NOT ?3)")
_RUNNING: Final = ("SELECT (SELECT count(*) FROM action_tasks WHERE name = ?1 "
                   f"AND owner IS NOT NULL AND lease_until > ?2) + {_HELD}")
# ?4 the queue's prefix ('': the default queue)
_RUNNING_QUEUE: Final = (
    "SELECT (SELECT count(*) FROM action_tasks WHERE owner IS NOT NULL AND lease_until > ?2 "
    "AND CASE WHEN ?4 = '' THEN instr(name, char(30)) = 0 "
    "ELSE substr(name, 1, length(?4)) = ?4 END) "
    f"+ {_HELD}")
_TAKE: Final = ("INSERT INTO flow_buckets (route, tokens, refilled_at, max_concurrent, rate) "
                "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (route) DO UPDATE SET tokens = ?2, "
                "refilled_at = max(refilled_at, ?3), max_concurrent = ?4, rate = ?5")
_HOLD: Final = ("INSERT INTO flow_holds (bucket, owner, slots, until) VALUES (?1, ?2, ?3, ?4) "
                "ON CONFLICT (bucket, owner) DO UPDATE SET slots = ?3, until = ?4")
_UNHOLD: Final = "DELETE FROM flow_holds WHERE bucket = ? AND owner = ?"
_STATE: Final = ("SELECT route, max_concurrent, rate, tokens, refilled_at FROM flow_buckets "
                 "WHERE route = ?")


class SQLiteLimited(SQLiteBase):
    """Claims under an action's limits and its queue's."""

    async def claim_limited(self, route: str, limit: Limit | None, owner: str, *, lease: float,
                            now: float, limit_count: int = 0,
                            queue_limit: Limit | None = None) -> list[ActionTask]:
        """Lease up to ``limit_count`` due tasks of action ``route`` within ``limit`` and its
        queue's ``queue_limit``."""
        return await self._write(_claim_limited_txn, route, RouteLimit(limit, queue_limit),
                                 owner, now, now + lease, limit_count)

    async def hold_limited(self, holds: Sequence[Hold], owner: str, *, lease: float,
                           now: float) -> list[tuple[int, int]]:
        """Hold slots and take tokens of each bucket for ``owner``'s inline attempts: what
        each hold got, (slots held, tokens taken) (``durable._limits.grant``)."""
        return await self._write(_hold_txn, list(holds), owner, now, now + lease)

    async def limit_waits(self, keys: Collection[str], *, now: float) -> dict[str, str]:
        """Why tasks wait for the limits of these buckets, by key (none: no wait)."""
        return await self._run(_limit_waits, list(keys), now)


def _limit_waits(conn: sqlite3.Connection, keys: list[str], now: float) -> dict[str, str]:
    rows = [(*row, _running(conn, key, now, None))
            for key in keys for row in conn.execute(_STATE, (key,)).fetchall()]
    return waits(rows, now)


def _tokens(conn: sqlite3.Connection, key: str, limit: Limit, now: float) -> float:
    row = conn.execute(_BUCKET, (key,)).fetchone()
    return refill(limit, None if row is None else row[0], now if row is None else row[1], now)


def _running(conn: sqlite3.Connection, key: str, now: float, owner: str | None) -> int:
    if key.startswith(SEP):
        prefix = queue_prefix(key[len(SEP):])
        return int(conn.execute(_RUNNING_QUEUE, (key, now, owner, prefix)).fetchone()[0])
    return int(conn.execute(_RUNNING, (key, now, owner)).fetchone()[0])


def _claim_limited_txn(conn: sqlite3.Connection, route: str, limits: RouteLimit, owner: str,
                       now: float, until: float, count: int) -> list[ActionTask]:
    wanted, taken = count, list[tuple[str, Limit, float]]()
    for key, bound in limits.buckets(route):
        tokens = _tokens(conn, key, bound, now)
        running = 0 if bound.max_concurrent is None else _running(conn, key, now, None)
        wanted = room(bound, running, tokens, wanted)
        taken.append((key, bound, tokens))
    claimed = [] if wanted <= 0 else _claim_action_txn(
        conn, (now, json.dumps([route]), wanted), owner, until)
    for key, bound, tokens in taken:
        conn.execute(_TAKE, (key, tokens - len(claimed), now, *bound))
    return claimed


def _hold_txn(conn: sqlite3.Connection, holds: list[Hold], owner: str, now: float,
              until: float) -> list[tuple[int, int]]:
    got: list[tuple[int, int]] = []
    for hold in holds:
        tokens = _tokens(conn, hold.bucket, hold.limit, now)
        running = 0 if hold.limit.max_concurrent is None else \
            _running(conn, hold.bucket, now, owner)
        slots, taken = grant(hold, running, tokens)
        if hold.limit.max_concurrent is not None and slots > 0:
            conn.execute(_HOLD, (hold.bucket, owner, slots, until))
        else:
            conn.execute(_UNHOLD, (hold.bucket, owner))
        conn.execute(_TAKE, (hold.bucket, tokens - taken, now, *hold.limit))
        got.append((slots, taken))
    return got
