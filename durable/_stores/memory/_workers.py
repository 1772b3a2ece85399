"""The memory store's worker liveness (``WorkerStore``): records and heartbeats only.

Every worker of a memory store runs in the one process that holds it, so no lock is needed
to learn of a process's death: a worker that stopped without unregistering is found by its
heartbeat, which is on the store's clock.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from .._liveness import Released, WorkerRecord
from .._records import TaskRef, action_ref, workflow_ref
from .._store_clock import OWN_CLOCK, StoreClock
from ._state import MemoryState

__all__ = ["MemoryWorkers"]


class MemoryWorkers(MemoryState):
    """Registered workers in a dict."""

    def __init__(self, url: str = "memory://", *, clock: StoreClock = OWN_CLOCK) -> None:
        super().__init__(url, clock=clock)
        self._workers: dict[str, WorkerRecord] = {}

    def _worker_time(self, now: float) -> float:
        store_now = self._store_time(now)
        return now if store_now is None else store_now

    async def register_worker(self, identity: str, *, host: str, pid: int, now: float) -> None:
        """Record ``identity`` as alive now."""
        at = self._worker_time(now)
        known = self._workers.get(identity)
        started = at if known is None else known.started_at
        self._workers[identity] = WorkerRecord(identity, host, pid, started, at)

    async def unregister_worker(self, identity: str, *, now: float) -> list[TaskRef]:
        """Forget the worker and release what it still holds."""
        self._workers.pop(identity, None)
        return self._release_tasks({identity}, now)

    async def list_workers(self) -> list[WorkerRecord]:
        """The registered workers, by identity."""
        return [self._workers[k] for k in sorted(self._workers)]

    async def release_dead_workers(self, *, timeout: float, now: float,
                                   alive: Collection[str] = ()) -> Released:
        """Forget the workers whose heartbeat is older than ``timeout``; release their tasks."""
        oldest = self._worker_time(now) - timeout
        dead = {w.identity for w in self._workers.values()
                if w.heartbeat_at < oldest and w.identity not in alive}
        for identity in dead:
            del self._workers[identity]
        return Released(sorted(dead), self._release_tasks(dead, now) if dead else [])

    def _release_tasks(self, owners: Collection[str], now: float) -> list[TaskRef]:
        refs: list[TaskRef] = []
        for (tenant, workflow_id), lease in self._wf_tasks.items():
            if lease.owner in owners:
                lease.until, lease.dispatched_at = 0.0, now
                refs.append(workflow_ref(tenant, workflow_id))
        for task, lease in self._actions.values():
            if lease.owner in owners:
                lease.until, lease.dispatched_at = 0.0, now
                refs.append(action_ref(task))
        holds: dict[tuple[str, str], Any] = getattr(self, "_flow_holds", {})
        for key in [k for k in holds if k[1] in owners]:  # its held slots (``_limits``)
            del holds[key]
        if refs:
            self.wakeup.notify()
        return refs
