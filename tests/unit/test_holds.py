"""Holds (``durable._worker._holds``): inline attempts of limited actions under slots and tokens
that workers hold in the store; two workers on one store never hand out more than the limit."""

from __future__ import annotations

from durable._limits import Limit, RouteLimit
from durable._stores import ActionTask
from durable._stores.memory import MemoryStore
from durable._worker._holds import IDLE, Holds


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def task(cmd: int) -> ActionTask:
    return ActionTask("t", "wf", "run", cmd, "send", [], {}, queue="mail")


LIMITS = {"mail\x1esend": RouteLimit(Limit(max_concurrent=3), Limit(rate=100.0))}


async def test_two_workers_never_hand_out_more_than_the_limit() -> None:
    store, clock = MemoryStore(), Clock()
    one, two = (Holds(store, owner, 10.0, clock, LIMITS) for owner in ("w1", "w2"))
    first = await one.admit([task(i) for i in range(5)])
    second = await two.admit([task(i) for i in range(5, 10)])
    assert len(first) + len(second) == 3
    # the store counts the slots they hold: a claim finds no room
    assert await store.claim_limited("mail\x1esend", Limit(max_concurrent=3), "w3", lease=10.0,
                                     now=clock.now, limit_count=5) == []
    one.release(first)
    two.release(second)
    clock.now += IDLE + 0.1
    await one.trim()  # unused for IDLE seconds: given back
    await two.trim()
    assert await store.limit_waits(["mail\x1esend"], now=clock.now) == {}


async def test_spare_slots_of_a_binding_limit_are_given_back_at_once() -> None:
    store, clock = MemoryStore(), Clock()
    one, two = (Holds(store, owner, 10.0, clock, LIMITS) for owner in ("w1", "w2"))
    [running] = await one.admit([task(1)])  # holds 1 + half of the 2 left: 2 slots
    assert await two.admit([task(2), task(3)]) == [task(2)]  # 1 left
    two.release([task(2)])
    await one.trim()  # binding: its spare slot goes back while the attempt still runs
    clock.now += 0.2  # tokens taken ahead lapse; the bucket has refilled
    assert len(await two.admit([task(4), task(5)])) == 2
    one.release([running])


async def test_without_limits_every_task_is_admitted_and_nothing_is_asked() -> None:
    store, clock = MemoryStore(), Clock()
    holds = Holds(store, "w1", 10.0, clock, {})
    tasks = [task(i) for i in range(50)]
    assert await holds.admit(tasks) == tasks
    assert await store.limit_waits(["mail\x1esend"], now=clock.now) == {}
