"""The memory store's snapshots (``SnapshotStore``), oldest first per run."""

from __future__ import annotations

from .._records import Snapshot
from ._state import MemoryState

__all__ = ["MemorySnapshots"]


class MemorySnapshots(MemoryState):
    """The ``keep`` newest snapshots of each run."""

    async def save_snapshot(self, snapshot: Snapshot, *, keep: int) -> None:
        """Keep ``snapshot`` and prune its run to the ``keep`` newest."""
        run = (snapshot.tenant, snapshot.workflow_id, snapshot.run_id)
        kept = [s for s in self._snapshots.get(run, []) if s.seq != snapshot.seq] + [snapshot]
        kept.sort(key=lambda s: s.seq)
        self._snapshots[run] = kept[-keep:]

    async def find_snapshot(self, tenant: str, workflow_id: str, run_id: str, *,
                            seq: int | None = None, time: float | None = None) -> Snapshot | None:
        """The run's newest snapshot at or before ``seq`` and ``time``."""
        for snapshot in reversed(self._snapshots.get((tenant, workflow_id, run_id), [])):
            if (seq is None or snapshot.seq <= seq) and (time is None or snapshot.time <= time):
                return snapshot
        return None
