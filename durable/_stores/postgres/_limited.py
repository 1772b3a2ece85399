"""The PostgreSQL store's claims of limited actions (``TaskStore.claim_limited``, see
``durable._limits``): one transaction that locks the action's ``flow_buckets`` row."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Final

from ..._limits import Limit, refill, room, waits
from .._records import ActionTask
from . import _statements as sql
from ._connection import PostgresBase
from ._rows import action_from_row

__all__ = ["PostgresLimited"]

# $1 route, $2 now: the bucket's row, created if new, locked until the transaction ends.
_LOCK: Final = """
INSERT INTO flow_buckets AS b (route, tokens, refilled_at) VALUES ($1, NULL, $2)
ON CONFLICT (route) DO UPDATE SET route = excluded.route
RETURNING b.tokens, b.refilled_at
"""
_RUNNING: Final = ("SELECT count(*) FROM action_tasks "
                   "WHERE name = $1 AND owner IS NOT NULL AND lease_until > $2")
_TAKE: Final = ("UPDATE flow_buckets SET tokens = $2, refilled_at = greatest(refilled_at, $3), "
                "max_concurrent = $4, rate = $5 WHERE route = $1")
# $1 routes, $2 now: each limited route's limits, bucket and leased tasks.
_STATES: Final = """
SELECT b.route, b.max_concurrent, b.rate, b.tokens, b.refilled_at,
       (SELECT count(*) FROM action_tasks AS a
        WHERE a.name = b.route AND a.owner IS NOT NULL AND a.lease_until > $2)
FROM flow_buckets AS b WHERE b.route = ANY ($1::text[])
"""


class PostgresLimited(PostgresBase):
    """Claims under an action's limits."""

    async def claim_limited(self, route: str, limit: Limit, owner: str, *, lease: float,
                            now: float, limit_count: int = 0) -> list[ActionTask]:
        """Lease up to ``limit_count`` due tasks of action ``route`` within ``limit``."""
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                bucket: Any = await conn.fetchrow(_LOCK, route, now)  # the insert returns it
                tokens = refill(limit, bucket[0], bucket[1], now)
                running = 0 if limit.max_concurrent is None else \
                    await conn.fetchval(_RUNNING, route, now)
                wanted = room(limit, running, tokens, limit_count)
                rows = [] if wanted <= 0 else await conn.fetch(
                    sql.CLAIM_ACTION_TASKS, owner, now + lease, now, [route], wanted)
                await conn.execute(_TAKE, route, tokens - len(rows), now, *limit)
        except Exception as exc:
            raise await self._mapped(exc) from exc
        return [action_from_row(row) for row in rows]

    async def limit_waits(self, routes: Collection[str], *, now: float) -> dict[str, str]:
        """Why tasks of these action routes wait for their limits, by route (none: no wait)."""
        rows = await self._fetch(_STATES, list(routes), now) if routes else []
        return waits([tuple(row) for row in rows], now)
