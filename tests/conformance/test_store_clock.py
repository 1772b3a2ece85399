"""The store's clock: timers are due on it, whatever the clocks of the callers (issue 12).

The rest of the conformance suite drives stores with explicit times (``clock="caller"``);
these tests open each store on its own clock (the database server's for PostgreSQL, this
machine's otherwise), or on a clock they move, and give it callers whose clocks are an hour
off, as a worker on a badly synchronized machine would be.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from durable._history import StartTimer, TimerFired
from durable._stores import Store, open_store

from .test_store import T1, claim_one, commit, create, history

SKEW = 3600.0  # an hour
TOLERANCE = 2.0  # seconds between this test's clock and the store's (PostgreSQL's server)


class MovedClock:
    """A clock a test moves."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def own(store_url: str) -> AsyncIterator[Store]:
    """A fresh store of each kind on its own clock."""
    store = await open_store(store_url)
    yield store
    await store.close()


async def timer_of(store: Store, committed_at: float, duration: float) -> float:
    """Commit a timer of ``duration`` seconds from a committer whose clock reads
    ``committed_at``; its due time as the store keeps it."""
    await create(store, now=committed_at)
    task = await claim_one(store, now=committed_at)
    assert await commit(store, task, StartTimer(1, duration, committed_at + duration),
                        now=committed_at)
    [timer] = (await store.pending_work(T1, "wf-1"))[1]
    return timer.fire_at


@pytest.mark.parametrize("skew", [SKEW, -SKEW])
async def test_a_skewed_committer_s_timer_is_due_on_the_store_s_clock(own: Store,
                                                                      skew: float) -> None:
    fire_at = await timer_of(own, time.time() + skew, 5.0)
    assert abs(fire_at - (time.time() + 5.0)) < TOLERANCE  # not an hour early or late


async def test_a_scanner_an_hour_ahead_fires_nothing_early(own: Store) -> None:
    await timer_of(own, time.time(), 5.0)
    assert await own.fire_due_timers(now=time.time() + SKEW, limit=10) == []
    assert not any(isinstance(e, TimerFired) for e in await history(own))


@pytest.mark.parametrize("skew", [SKEW, -SKEW, 0.0])
async def test_next_wakeup_is_on_each_caller_s_clock(own: Store, skew: float) -> None:
    await timer_of(own, time.time(), 30.0)
    caller_now = time.time() + skew
    due = await own.next_wakeup(now=caller_now)
    assert due is not None and abs(due - (caller_now + 30.0)) < TOLERANCE
    timer = await own.next_timer(now=caller_now)  # the server's timers loop asks this one
    assert timer is not None and abs(timer - (caller_now + 30.0)) < TOLERANCE


async def test_a_store_on_a_given_clock_fires_when_that_clock_says(store_url: str) -> None:
    clock = MovedClock(1_000_000.0)
    store = await open_store(store_url, clock=clock)
    try:
        # The committer's clock is a day off: the timer is due 10 s after the store's clock.
        assert await timer_of(store, 2_000_000.0, 10.0) == 1_000_010.0
        assert await store.next_wakeup(now=2_000_000.0) == 2_000_010.0
        assert await store.fire_due_timers(now=2_000_100.0, limit=10) == []  # a caller's clock
        clock.now += 9.5
        assert await store.fire_due_timers(now=0.0, limit=10) == []
        clock.now += 0.5
        assert len(await store.fire_due_timers(now=3.0, limit=10)) == 1
        fired = [e for e in await history(store) if isinstance(e, TimerFired)]
        assert [e.time for e in fired] == [3.0]  # stamped by the caller, as every input is
    finally:
        await store.close()


async def test_a_store_s_clock_is_own_caller_or_a_clock(store_url: str) -> None:
    with pytest.raises(ValueError, match="clock"):
        await open_store(store_url, clock="server")  # type: ignore[arg-type]


async def test_a_timer_a_scanner_ahead_fires_is_runnable_for_the_others(store_url: str) -> None:
    clock = MovedClock(1_000_000.0)
    store = await open_store(store_url, clock=clock)
    try:
        await timer_of(store, 1_000_000.0, 10.0)
        clock.now += 10.0
        assert len(await store.fire_due_timers(now=1_000_010.0 + SKEW, limit=10)) == 1
        [fired] = [e for e in await history(store) if isinstance(e, TimerFired)]
        assert fired.time == 1_000_010.0  # the earlier clock: the store's, not the scanner's
        task = await claim_one(store, now=1_000_010.0)  # a worker on time takes it at once
        assert task.workflow_id == "wf-1"
    finally:
        await store.close()
