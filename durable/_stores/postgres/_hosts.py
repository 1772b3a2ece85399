"""The PostgreSQL store's record of what live workers host (``HostStore``, migration 0011)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Final

from ._connection import PostgresBase

__all__ = ["PostgresHosts"]

# $1 worker, $2 kinds, $3 routes, $4 now: (re)write the worker's rows.
_REGISTER: Final = """
INSERT INTO worker_hosts (kind, route, worker, seen_at)
SELECT k, r, $1, $4 FROM unnest($2::text[], $3::text[]) AS h(k, r)
ON CONFLICT (kind, route, worker) DO UPDATE SET seen_at = excluded.seen_at
"""
_FORGET: Final = "DELETE FROM worker_hosts WHERE worker = $1"
# $1 kinds, $2 routes, $3 since: the pairs no live worker hosts.
_UNHOSTED: Final = """
SELECT h.k, h.r FROM unnest($1::text[], $2::text[]) AS h(k, r)
WHERE NOT EXISTS (SELECT FROM worker_hosts AS w
                  WHERE w.kind = h.k AND w.route = h.r AND w.seen_at >= $3)
"""


class PostgresHosts(PostgresBase):
    """Rows of ``worker_hosts``: (kind, route, worker, seen_at)."""

    async def register_hosts(self, worker: str, hosts: Collection[tuple[str, str]], *,
                             now: float) -> None:
        """Record that ``worker`` hosts ``hosts`` ((kind, route) pairs) as of ``now``."""
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute(_FORGET, worker)
                await conn.execute(_REGISTER, worker, [k for k, _ in hosts],
                                   [r for _, r in hosts], now)
        except Exception as exc:
            raise await self._mapped(exc) from exc

    async def unregister_hosts(self, worker: str) -> None:
        """Forget what ``worker`` hosts (it stopped)."""
        await self._fetch(_FORGET, worker)

    async def unhosted(self, hosts: Collection[tuple[str, str]], *,
                       since: float) -> set[tuple[str, str]]:
        """The (kind, route) pairs of ``hosts`` that no worker seen since ``since`` hosts."""
        if not hosts:
            return set()
        rows = await self._fetch(_UNHOSTED, [k for k, _ in hosts], [r for _, r in hosts], since)
        return {(k, r) for k, r in rows}
