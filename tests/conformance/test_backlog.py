"""``Store.backlog``: ready tasks nobody holds, by kind and route, and the timers due; what the
server's queue-depth and timers-due gauges show."""

from __future__ import annotations

from durable._history import ScheduleAction, StartTimer
from durable._queues import route
from durable._stores import Store
from durable._stores._backlog import Backlog, ReadyCount

from .test_store import NOW, act, claim, claim_actions, create, started_with


async def test_an_empty_store_has_no_backlog(store: Store) -> None:
    assert await store.backlog(now=NOW) == Backlog([], 0)


async def test_backlog_counts_ready_unheld_tasks_by_route_and_due_timers(store: Store) -> None:
    on_mail = ScheduleAction(5, "act", [5], {}, queue="mail")
    await started_with(store, act(1), act(2), act(3, "other"), on_mail,
                       StartTimer(4, 5.0, NOW + 5), StartTimer(6, 50.0, NOW + 50))
    await create(store, "wf-2")
    await create(store, "wf-3")
    assert await store.backlog(now=NOW) == Backlog([
        ReadyCount("action", "act", 2), ReadyCount("action", route("act", "mail"), 1),
        ReadyCount("action", "other", 1), ReadyCount("workflow", "Flow", 2)], 0)
    [_] = await claim_actions(store, "a1", limit=1)  # held: not waiting any more
    [_] = await claim(store, "w1", limit=1)
    later = await store.backlog(now=NOW + 10)  # one timer due, not fired
    assert later == Backlog([
        ReadyCount("action", "act", 1), ReadyCount("action", route("act", "mail"), 1),
        ReadyCount("action", "other", 1), ReadyCount("workflow", "Flow", 1)], 1)
    await store.fire_due_timers(now=NOW + 10, limit=10)  # fired: wf-1 is ready again
    assert await store.backlog(now=NOW + 10) == Backlog(later.ready[:3] + [
        ReadyCount("workflow", "Flow", 2)], 0)


async def test_tasks_not_visible_yet_are_not_in_the_backlog(store: Store) -> None:
    await started_with(store, act(1), visible_at=NOW + 5)
    assert await store.backlog(now=NOW) == Backlog([], 0)
    assert await store.backlog(now=NOW + 5) == Backlog([ReadyCount("action", "act", 1)], 0)
