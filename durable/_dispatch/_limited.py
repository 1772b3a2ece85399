"""Claims of action tasks under their limits and their queues' (see ``durable._limits``), for
every dispatcher, and when a worker looks for a limited route's tasks (``Looks``)."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from .._limits import RouteLimit
from .._stores import ActionTask, TaskStore

__all__ = ["IDLE", "Looks", "claim_actions"]

IDLE = 0.2  # seconds between two looks at a limited route that nothing names


class Looks:
    """When to look for a hosted limited route's tasks (each look is a store transaction of
    several statements, under the route's limits, so not one on every claim).

    At once when a hint names the route or one of its attempts ends here (``mark``: a slot
    freed), and after a look that took all it asked for (more may wait); one token's time
    after a look that a rate may have held back (it took some, not all); else ``IDLE``
    seconds later, which covers what no hint announces here: a slot another worker freed, a
    hint acknowledged while its limit held the task back.
    """

    def __init__(self) -> None:
        self._next: dict[str, float] = {}  # route -> when to look again (absent: at once)
        self._soon: dict[str, float] = {}  # the looks a rate's next token is due for

    def mark(self, route: str) -> None:
        """Look at ``route`` on the next claim."""
        self._next.pop(route, None)
        self._soon.pop(route, None)

    def due(self, routes: Collection[str], now: float) -> list[str]:
        """The routes of ``routes`` to look at now, in a stable order."""
        return sorted(r for r in routes if self._next.get(r, 0.0) <= now)

    def looked(self, route: str, bounds: RouteLimit, asked: int, found: int,
               now: float) -> None:
        """Record a look at ``route`` that asked for ``asked`` tasks and got ``found``."""
        self._soon.pop(route, None)
        if found >= asked:
            self._next.pop(route, None)
            return
        rates = [b.rate for b in (bounds.action, bounds.queue) if b is not None and b.rate]
        if found and rates:
            self._next[route] = self._soon[route] = now + min(1.0 / min(rates), IDLE)
        else:
            self._next[route] = now + IDLE

    def wait(self, now: float) -> float | None:
        """How long a claim may wait before a rate's next token is due (None: no such look)."""
        return max(min(self._soon.values()) - now, 0.0) if self._soon else None


async def claim_actions(store: TaskStore, actions: Collection[str],
                        limits: Mapping[str, RouteLimit], owner: str, *, lease: float,
                        now: float, limit: int, looks: Looks | None = None) -> list[ActionTask]:
    """``store.claim_action_tasks``, with the limited routes claimed one by one under their
    limits (``TaskStore.claim_limited``); with ``looks``, only those it says are due (the
    caller passes those), and each look is recorded there."""
    free = [route for route in actions if route not in limits]
    claimed = await store.claim_action_tasks(free, owner, lease=lease, now=now,
                                             limit=limit) if free else []
    for route in sorted(r for r in actions if r in limits):
        if len(claimed) >= limit:
            break
        bounds, asked = limits[route], limit - len(claimed)
        found = await store.claim_limited(route, bounds.action, owner, lease=lease, now=now,
                                          limit_count=asked, queue_limit=bounds.queue)
        if looks is not None:
            looks.looked(route, bounds, asked, len(found), now)
        claimed += found
    return claimed
