"""The PostgreSQL store's claims of limited actions (``TaskStore.claim_limited``) and holds of
slots and tokens for inline attempts (``TaskStore.hold_limited``), see ``durable._limits``:
each one transaction that locks the ``flow_buckets`` rows involved, a queue's before an
action's (every claimer locks in that order, so two never wait for each other)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Final

from ..._limits import Hold, Limit, RouteLimit, grant, queue_prefix, refill, room, waits
from ..._queues import SEP
from .._records import ActionTask
from . import _statements as sql
from ._connection import PostgresBase
from ._rows import action_from_row

__all__ = ["PostgresLimited"]

# $1 key, $2 now: the bucket's row, created if new, locked until the transaction ends.
_LOCK: Final = """
INSERT INTO flow_buckets AS b (route, tokens, refilled_at) VALUES ($1, NULL, $2)
ON CONFLICT (route) DO UPDATE SET route = excluded.route
RETURNING b.tokens, b.refilled_at
"""
# Running in a bucket: its leased tasks (of the action, or of every action on the queue) and
# the slots held in it by workers other than $3 (NULL: every worker).
_HELD: Final = ("(SELECT coalesce(sum(slots), 0) FROM flow_holds "
                "WHERE bucket = $1 AND until > $2 AND owner IS DISTINCT FROM $3)")
# $1 route, $2 now, $3 owner
_RUNNING: Final = ("SELECT (SELECT count(*) FROM action_tasks WHERE name = $1 "
                   f"AND owner IS NOT NULL AND lease_until > $2) + {_HELD}")
# $1 the queue's bucket, $2 now, $3 owner, $4 the queue's prefix ('': the default queue)
_RUNNING_QUEUE: Final = (
    "SELECT (SELECT count(*) FROM action_tasks WHERE owner IS NOT NULL AND lease_until > $2 "
    "AND CASE WHEN $4 = '' THEN strpos(name, chr(30)) = 0 ELSE starts_with(name, $4) END) "
    f"+ {_HELD}")
_TAKE: Final = ("UPDATE flow_buckets SET tokens = $2, refilled_at = greatest(refilled_at, $3), "
                "max_concurrent = $4, rate = $5 WHERE route = $1")
# $1 key, $2 owner, $3 slots, $4 until
_HOLD: Final = ("INSERT INTO flow_holds (bucket, owner, slots, until) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT (bucket, owner) DO UPDATE SET slots = $3, until = $4")
_UNHOLD: Final = "DELETE FROM flow_holds WHERE bucket = $1 AND owner = $2"
# $1 keys, $2 now: each limited bucket's limits and tokens.
_STATES: Final = ("SELECT route, max_concurrent, rate, tokens, refilled_at FROM flow_buckets "
                  "WHERE route = ANY ($1::text[])")


class PostgresLimited(PostgresBase):
    """Claims under an action's limits and its queue's."""

    async def claim_limited(self, route: str, limit: Limit | None, owner: str, *, lease: float,
                            now: float, limit_count: int = 0,
                            queue_limit: Limit | None = None) -> list[ActionTask]:
        """Lease up to ``limit_count`` due tasks of action ``route`` within ``limit`` and its
        queue's ``queue_limit``."""
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                wanted, taken = limit_count, list[tuple[str, Limit, float]]()
                for key, bound in RouteLimit(limit, queue_limit).buckets(route):
                    tokens = await _tokens(conn, key, bound, now)
                    running = 0 if bound.max_concurrent is None else \
                        await _running(conn, key, now, None)
                    wanted = room(bound, running, tokens, wanted)
                    taken.append((key, bound, tokens))
                rows = [] if wanted <= 0 else await conn.fetch(
                    sql.CLAIM_ACTION_TASKS, owner, now + lease, now, [route], wanted)
                for key, bound, tokens in taken:
                    await conn.execute(_TAKE, key, tokens - len(rows), now, *bound)
        except Exception as exc:
            raise await self._mapped(exc) from exc
        return [action_from_row(row) for row in rows]

    async def hold_limited(self, holds: Sequence[Hold], owner: str, *, lease: float,
                           now: float) -> list[tuple[int, int]]:
        """Hold slots and take tokens of each bucket for ``owner``'s inline attempts: what
        each hold got, (slots held, tokens taken) (``durable._limits.grant``)."""
        got: list[tuple[int, int]] = [(0, 0)] * len(holds)
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                for i in sorted(range(len(holds)), key=lambda i: _lock_order(holds[i])):
                    hold = holds[i]
                    tokens = await _tokens(conn, hold.bucket, hold.limit, now)
                    running = 0 if hold.limit.max_concurrent is None else \
                        await _running(conn, hold.bucket, now, owner)
                    slots, taken = grant(hold, running, tokens)
                    if hold.limit.max_concurrent is not None and slots > 0:
                        await conn.execute(_HOLD, hold.bucket, owner, slots, now + lease)
                    else:
                        await conn.execute(_UNHOLD, hold.bucket, owner)
                    await conn.execute(_TAKE, hold.bucket, tokens - taken, now, *hold.limit)
                    got[i] = (slots, taken)
        except Exception as exc:
            raise await self._mapped(exc) from exc
        return got

    async def limit_waits(self, keys: Collection[str], *, now: float) -> dict[str, str]:
        """Why tasks wait for the limits of these buckets, by key (none: no wait)."""
        if not keys:
            return {}
        try:
            async with self._pool.acquire() as conn:
                rows = await conn.fetch(_STATES, list(keys))
                states = [(*row, await _running(conn, row[0], now, None)) for row in rows]
        except Exception as exc:
            raise await self._mapped(exc) from exc
        return waits(states, now)


def _lock_order(hold: Hold) -> tuple[bool, str]:
    return (not hold.bucket.startswith(SEP), hold.bucket)  # queues' buckets first


async def _tokens(conn: Any, key: str, limit: Limit, now: float) -> float:
    bucket: Any = await conn.fetchrow(_LOCK, key, now)  # the insert returns it
    return refill(limit, bucket[0], bucket[1], now)


async def _running(conn: Any, key: str, now: float, owner: str | None) -> int:
    if key.startswith(SEP):
        prefix = queue_prefix(key[len(SEP):])
        return int(await conn.fetchval(_RUNNING_QUEUE, key, now, owner, prefix))
    return int(await conn.fetchval(_RUNNING, key, now, owner))
