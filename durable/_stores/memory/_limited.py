"""The memory store's claims of limited actions (``TaskStore.claim_limited``) and holds of
slots and tokens for inline attempts (``TaskStore.hold_limited``), see ``durable._limits``."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

from ..._limits import Hold, Limit, RouteLimit, grant, refill, room, waits
from ..._queues import SEP, route as route_of
from .._records import ActionTask
from ._state import ActionKey, Lease
from ._tasks import MemoryTasks

__all__ = ["MemoryLimited"]


class MemoryLimited(MemoryTasks):
    """Buckets by key (an action's route or a queue's bucket): (tokens, refilled_at, limit);
    holds by (key, owner): (slots, until)."""

    _buckets: dict[str, tuple[float | None, float, Limit]]
    _flow_holds: dict[tuple[str, str], tuple[int, float]]

    def _flow(self) -> None:
        if not hasattr(self, "_buckets"):
            self._buckets, self._flow_holds = {}, {}

    async def claim_limited(self, route: str, limit: Limit | None, owner: str, *, lease: float,
                            now: float, limit_count: int = 0,
                            queue_limit: Limit | None = None) -> list[ActionTask]:
        """Lease up to ``limit_count`` due tasks of action ``route`` within ``limit`` and its
        queue's ``queue_limit``."""
        self._flow()
        wanted, taken = limit_count, list[tuple[str, Limit, float]]()
        for key, bound in RouteLimit(limit, queue_limit).buckets(route):
            tokens = self._tokens(key, bound, now)
            wanted = room(bound, self._running(key, now), tokens, wanted)
            taken.append((key, bound, tokens))
        mine = self._of(lambda task: route_of(task.name, task.queue) == route)
        claimed: list[ActionTask] = []
        for action in self._action_order([key for key, _ in mine], (route,), now):
            if len(claimed) >= wanted:
                break
            task = self._claim_action(action, (route,), owner, lease, now)
            if task is not None:
                claimed.append(task)
        for key, bound, tokens in taken:
            self._buckets[key] = (tokens - len(claimed), now, bound)
        return claimed

    async def hold_limited(self, holds: Sequence[Hold], owner: str, *, lease: float,
                           now: float) -> list[tuple[int, int]]:
        """Hold slots and take tokens of each bucket for ``owner``'s inline attempts: what
        each hold got, (slots held, tokens taken) (``durable._limits.grant``)."""
        self._flow()
        got: list[tuple[int, int]] = []
        for hold in holds:
            tokens = self._tokens(hold.bucket, hold.limit, now)
            self._flow_holds.pop((hold.bucket, owner), None)
            slots, taken = grant(hold, self._running(hold.bucket, now), tokens)
            if hold.limit.max_concurrent is not None and slots > 0:
                self._flow_holds[(hold.bucket, owner)] = (slots, now + lease)
            self._buckets[hold.bucket] = (tokens - taken, now, hold.limit)
            got.append((slots, taken))
        return got

    async def limit_waits(self, keys: Collection[str], *, now: float) -> dict[str, str]:
        """Why tasks wait for the limits of these buckets, by key (none: no wait)."""
        self._flow()
        return waits([(k, *self._buckets[k][2], *self._buckets[k][:2], self._running(k, now))
                      for k in keys if k in self._buckets], now)

    def _tokens(self, key: str, limit: Limit, now: float) -> float:
        tokens, refilled_at, _ = self._buckets.get(key, (None, now, limit))
        return refill(limit, tokens, refilled_at, now)

    def _running(self, key: str, now: float) -> int:
        """Leased tasks of the bucket's action (or queue) plus the slots held in it."""
        if key.startswith(SEP):
            tasks = self._of(lambda task: task.queue == key[len(SEP):])
        else:
            tasks = self._of(lambda task: route_of(task.name, task.queue) == key)
        held = sum(slots for (bucket, _), (slots, until) in self._flow_holds.items()
                   if bucket == key and until > now)
        return held + sum(lease.owner is not None and lease.until > now for _, lease in tasks)

    def _of(self, matches: Callable[[ActionTask], bool]) -> list[tuple[ActionKey, Lease]]:
        return [(key, held) for key, (task, held) in self._actions.items() if matches(task)]

