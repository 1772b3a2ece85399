"""The PostgreSQL store's action heartbeats (``HeartbeatStore``): details on the task's row."""

from __future__ import annotations

from .._records import ActionTask
from ._connection import PostgresBase
from ._rows import action_key

__all__ = ["PostgresHeartbeats"]

_KEY = "tenant = $1 AND workflow_id = $2 AND run_id = $3 AND cmd = $4"
_RECORD = (f"UPDATE action_tasks SET heartbeat_details = $6, lease_until = $7 WHERE {_KEY} "
           "AND owner IS NOT DISTINCT FROM $5 RETURNING true")
_READ = f"SELECT heartbeat_details FROM action_tasks WHERE {_KEY}"


class PostgresHeartbeats(PostgresBase):
    """Heartbeat details in ``action_tasks.heartbeat_details``."""

    async def record_action_heartbeat(self, task: ActionTask, owner: str, details: bytes, *,
                                      lease: float, now: float) -> bool:
        """Keep ``details`` on the task and its lease alive; False if the lease was lost."""
        kept = await self._fetchval(_RECORD, *action_key(task), owner, details, now + lease)
        return bool(kept)

    async def action_heartbeat_details(self, task: ActionTask) -> bytes | None:
        """The details of the task's last recorded heartbeat."""
        found: bytes | None = await self._fetchval(_READ, *action_key(task))
        return found
