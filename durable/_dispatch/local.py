"""In-process dispatch for the embedded stores: poll the store, wake up on local changes.

Every worker also fires due timers, starts the runs of due schedules and deletes closed
executions past their retention (``Housekeeper``), so a single process needs nothing else.
Several processes sharing one SQLite file find each other's work by polling.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

from .._clock import SYSTEM_CLOCK, Clock
from .._retention import DEFAULT_RETENTION, GC_EVERY
from .._stores import Store, TaskRef
from ._limited import claim_actions
from ._base import Claim, ClaimSpec, room_for
from ._housekeeping import Housekeeper

__all__ = ["LocalDispatcher"]


class LocalDispatcher:
    """Claims straight from the store; ``publish`` is implied by the store's own wake-ups.

    ``clock`` is where it reads the time (due timers and tasks); ``time.time`` by default.
    With ``fire_timers=False`` it leaves timers, schedules and retention to others (``durable
    server``). ``retention`` and ``gc_every``: see ``Housekeeper``.
    """

    def __init__(self, store: Store, *, fire_timers: bool = True, clock: Clock = SYSTEM_CLOCK,
                 retention: float | None = DEFAULT_RETENTION, gc_every: float = GC_EVERY) -> None:
        self.store = store
        self.clock = clock
        self._housekeeper = Housekeeper(store, clock=clock, retention=retention,
                                        gc_every=gc_every) if fire_timers else None

    async def publish(self, refs: Sequence[TaskRef], *, sticky: bool = True) -> None:
        """Nothing to do: the store already woke this process's pollers."""

    async def receive(self, spec: ClaimSpec, *, limit: int, timeout: float,
                      kinds: Mapping[str, int] | None = None) -> list[Claim]:
        """Claim due work; if there is none, wait for a local change, the next due time or
        ``timeout``, and try once more."""
        seen = self.store.wakeup.generation
        claims = await self._claim(spec, limit, kinds)
        if claims or timeout <= 0:
            return claims
        now = self.clock()
        due = await self.store.next_wakeup(now=now)
        wait = timeout if due is None else min(max(due - now, 0.0), timeout)
        if self._housekeeper is not None:
            wait = min(wait, max(self._housekeeper.next_schedule_pass - now, 0.0))
        await self.store.wakeup.wait(wait, seen)
        return await self._claim(spec, limit, kinds)

    async def _claim(self, spec: ClaimSpec, limit: int,
                     kinds: Mapping[str, int] | None) -> list[Claim]:
        store, now = self.store, self.clock()
        if self._housekeeper is not None:  # the store wakes this process's pollers
            await self._housekeeper.fire_timers(now)
            await self._housekeeper.run_schedules_if_due(now)
            await self._housekeeper.collect_garbage_if_due(now)
            await self._housekeeper.refresh_statistics_if_due(now)
        claims: list[Claim] = []
        workflows = room_for("w", limit, kinds)
        if spec.workflows and workflows > 0:
            tasks = await store.claim_workflow_tasks(spec.workflows, spec.owner, lease=spec.lease,
                                                     now=now, limit=workflows)
            claims.extend(Claim(t) for t in tasks)
        actions = room_for("a", limit - len(claims), kinds)
        if spec.actions and actions > 0:
            found = await claim_actions(store, spec.actions, spec.limits, spec.owner,
                                        lease=spec.lease, now=now, limit=actions)
            claims.extend(Claim(a) for a in found)
        return claims

    async def stick(self, owner: str, tenant: str, workflow_id: str, *, keep: bool) -> float:
        """Nothing to do: in one process the cache is shared by everyone (for ever)."""
        return math.inf

    async def forget(self, tenant: str, workflow_id: str) -> None:
        """Nothing to do: there are no routes."""

    async def forget_worker(self, owner: str) -> None:
        """Nothing to do: hints are never routed to a worker."""

    async def ack(self, claims: Sequence[Claim]) -> None:
        """Nothing to do: a claim is its own record."""

    async def retire(self, owner: str) -> None:
        """Nothing to do: a worker holds no hints."""

    async def close(self) -> None:
        """Nothing to release."""
