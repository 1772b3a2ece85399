"""The PostgreSQL store's snapshots (``SnapshotStore``)."""

from __future__ import annotations

from .._records import Snapshot
from . import _statements as sql
from ._connection import PostgresBase
from ._rows import decode_dict, encode

__all__ = ["PostgresSnapshots"]


class PostgresSnapshots(PostgresBase):
    """Snapshots in the ``snapshots`` table (migration 0004)."""

    async def save_snapshot(self, snapshot: Snapshot, *, keep: int) -> None:
        """Keep ``snapshot`` and prune its run to the ``keep`` newest (one transaction)."""
        s = snapshot
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute(sql.SAVE_SNAPSHOT, s.tenant, s.workflow_id, s.run_id, s.seq,
                                   s.time, s.status, s.state, encode(s.data), s.suspended_at)
                await conn.execute(sql.PRUNE_SNAPSHOTS, s.tenant, s.workflow_id, s.run_id, keep)
        except Exception as exc:
            raise await self._mapped(exc) from exc

    async def find_snapshot(self, tenant: str, workflow_id: str, run_id: str, *,
                            seq: int | None = None, time: float | None = None) -> Snapshot | None:
        """The run's newest snapshot at or before ``seq`` and ``time``."""
        row = await self._fetchrow(sql.FIND_SNAPSHOT, tenant, workflow_id, run_id, seq, time)
        if row is None:
            return None
        tenant, workflow_id, run_id, at_seq, at_time, status, state, data, suspended_at = row
        return Snapshot(tenant, workflow_id, run_id, at_seq, at_time, status, state,
                        decode_dict(data), suspended_at)
