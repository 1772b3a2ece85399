"""``Backlog``: what waits for workers right now (``TimerStore.backlog``), for the server's
queue-depth and timers-due gauges; and how often the outbox announces a task that waits
(``announced_mark``)."""

from __future__ import annotations

from typing import Final, NamedTuple

__all__ = ["REANNOUNCE_AT_MOST", "Backlog", "ReadyCount", "announced_mark"]

REANNOUNCE_AT_MOST: Final = 60.0  # seconds: the longest gap between two outbox announcements


def announced_mark(now: float, due: float, older_than: float) -> float:
    """The ``dispatched_at`` the outbox (``TimerStore.dispatch_due``) records when it announces
    at ``now`` a task claimable since ``due``. The task is announced again once it has gone
    unclaimed for as long again as it had waited (``now - due``), but at least ``older_than``
    and at most ``REANNOUNCE_AT_MOST`` seconds later: a backlog that workers drain for minutes
    is announced a few times, not every ``older_than`` seconds (which, with tens of thousands
    queued, kept the server announcing non-stop), while the lost hint of a task that has
    just become due is still repaired after ``older_than``."""
    return now + max(0.0, min(now - due, REANNOUNCE_AT_MOST) - older_than)


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
