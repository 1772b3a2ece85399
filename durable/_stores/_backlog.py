"""``Backlog``: what waits for workers right now (``TimerStore.backlog``), for the server's
queue-depth and timers-due gauges."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Backlog", "ReadyCount"]


class ReadyCount(NamedTuple):
    """How many ready tasks of one kind (``"workflow"`` or ``"action"``) and route (the name
    on its queue, ``durable._queues.route``) no worker holds."""

    kind: str
    route: str
    tasks: int


class Backlog(NamedTuple):
    """Ready tasks nobody holds, by kind and route (sorted; routes with none are left out),
    and the timers due on the store's clock that have not fired yet."""

    ready: list[ReadyCount]
    timers_due: int
