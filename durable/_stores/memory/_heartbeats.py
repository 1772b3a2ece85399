"""The memory store's action heartbeats (``HeartbeatStore``): details beside the tasks."""

from __future__ import annotations

from .._records import ActionTask
from .._store_clock import OWN_CLOCK, StoreClock
from ._state import ActionKey, MemoryState

__all__ = ["MemoryHeartbeats"]


class MemoryHeartbeats(MemoryState):
    """Heartbeat details by action key, forgotten with their task."""

    def __init__(self, url: str = "memory://", *, clock: StoreClock = OWN_CLOCK) -> None:
        super().__init__(url, clock=clock)
        self._beats: dict[ActionKey, bytes] = {}

    async def record_action_heartbeat(self, task: ActionTask, owner: str, details: bytes, *,
                                      lease: float, now: float) -> bool:
        """Keep ``details`` beside the task and its lease alive; False if the lease was lost."""
        for key in [k for k in self._beats if k not in self._actions]:
            del self._beats[key]  # their tasks ended
        key = (task.tenant, task.workflow_id, task.run_id, task.cmd)
        entry = self._actions.get(key)
        if entry is None or entry[1].owner != owner:
            return False
        entry[1].until = now + lease
        self._beats[key] = details
        return True

    async def action_heartbeat_details(self, task: ActionTask) -> bytes | None:
        """The details of the task's last recorded heartbeat."""
        key = (task.tenant, task.workflow_id, task.run_id, task.cmd)
        return self._beats.get(key) if key in self._actions else None
