"""Claims of action tasks under their limits and their queues' (see ``durable._limits``), for
every dispatcher."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from .._limits import RouteLimit
from .._stores import ActionTask, TaskStore

__all__ = ["claim_actions"]


async def claim_actions(store: TaskStore, actions: Collection[str],
                        limits: Mapping[str, RouteLimit], owner: str, *, lease: float,
                        now: float, limit: int) -> list[ActionTask]:
    """``store.claim_action_tasks``, with the limited routes claimed one by one under their
    limits (``TaskStore.claim_limited``)."""
    free = [route for route in actions if route not in limits]
    claimed = await store.claim_action_tasks(free, owner, lease=lease, now=now,
                                             limit=limit) if free else []
    for route in sorted(r for r in actions if r in limits):
        if len(claimed) >= limit:
            break
        bounds = limits[route]
        claimed += await store.claim_limited(route, bounds.action, owner, lease=lease, now=now,
                                             limit_count=limit - len(claimed),
                                             queue_limit=bounds.queue)
    return claimed
