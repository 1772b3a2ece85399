"""The memory store's claims of limited actions (``TaskStore.claim_limited``, see
``durable._limits``)."""

from __future__ import annotations

from collections.abc import Collection

from ..._limits import Limit, refill, room, waits
from ..._queues import route as route_of
from .._records import ActionTask
from ._state import ActionKey, Lease
from ._tasks import MemoryTasks

__all__ = ["MemoryLimited"]


class MemoryLimited(MemoryTasks):
    """Buckets by route: (tokens, refilled_at)."""

    _buckets: dict[str, tuple[float, float, Limit]]

    async def claim_limited(self, route: str, limit: Limit, owner: str, *, lease: float,
                            now: float, limit_count: int = 0) -> list[ActionTask]:
        """Lease up to ``limit_count`` due tasks of action ``route`` within ``limit``."""
        if not hasattr(self, "_buckets"):
            self._buckets = {}
        tokens, refilled_at, _ = self._buckets.get(route, (None, now, limit))
        tokens = refill(limit, tokens, refilled_at, now)
        mine = self._of(route)
        running = self._running(mine, now)
        wanted = room(limit, running, tokens, limit_count)
        claimed: list[ActionTask] = []
        for key in self._action_order([key for key, _ in mine], (route,), now):
            if len(claimed) >= wanted:
                break
            task = self._claim_action(key, (route,), owner, lease, now)
            if task is not None:
                claimed.append(task)
        self._buckets[route] = (tokens - len(claimed), max(refilled_at, now), limit)
        return claimed

    async def limit_waits(self, routes: Collection[str], *, now: float) -> dict[str, str]:
        """Why tasks of these action routes wait for their limits, by route (none: no wait)."""
        buckets = getattr(self, "_buckets", {})
        return waits([(r, *buckets[r][2], *buckets[r][:2], self._running(self._of(r), now))
                      for r in routes if r in buckets], now)

    def _of(self, route: str) -> list[tuple[ActionKey, Lease]]:
        return [(key, held) for key, (task, held) in self._actions.items()
                if route_of(task.name, task.queue) == route]

    @staticmethod
    def _running(tasks: list[tuple[ActionKey, Lease]], now: float) -> int:
        return sum(held.owner is not None and held.until > now for _, held in tasks)
