"""Replay's look-ahead (``durable/_replay/_ahead.py``): an awaited action call whose outcome is
the next batch's lone input takes that batch at once, and only where that changes nothing the
code can see. Each test runs a workflow live, batch by batch with the clock moving, then
replays its history on a fresh instance and checks the two agree: on the outcome, and on the
commands of the next live batch given to both."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

import durable
from durable._history import (
    CancelAction, Event, EventReceived, ScheduleAction, TaskCompleted,
)
from durable._replay import WorkflowInstance, _ahead, replay
from durable.errors import ActionFailedError, DurableError

from ._harness import Harness


@durable.action
async def add(x: int, y: int) -> int:
    return x + y


@dataclasses.dataclass
class Point:
    x: int
    y: int


@durable.action
async def point(x: int) -> Point:
    return Point(x, -x)


@durable.action
async def number() -> int:
    return 0


ACTIONS = {"add": lambda x, y: x + y, "fail": lambda: 1 / 0,
           "point": lambda x: {"x": x, "y": -x}, "number": lambda: "not a number"}


@durable.action
async def fail() -> int:
    raise RuntimeError("boom")


def run_live(h: Harness, complete_cancelled: bool = True) -> None:
    """Activate until the workflow ends or waits for an event; one second per batch. Calls
    cancelled in the batch that issued them complete only with ``complete_cancelled``."""
    for _ in range(100):
        commands = h.activate()
        if h.instance.done:
            return
        cancelled = {c.cmd for c in commands if isinstance(c, CancelAction)}
        h.complete_actions([c for c in commands if complete_cancelled
                            or not (isinstance(c, ScheduleAction) and c.cmd in cancelled)])
        if not h.pending:
            if not h.timers:
                return
            h.fire_next_timer()
        h.time += 1.0
    raise AssertionError("workflow did not finish")


def replayed(h: Harness, history: list[Event] | None = None) -> WorkflowInstance:
    instance = WorkflowInstance(h.defn, h.started)
    _, failed = replay(instance, h.history if history is None else history)
    assert failed is None, failed.error
    return instance


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The positions of the batches that awaited calls took (``AheadFuture.__await__``)."""
    seen: list[int] = []
    awaited = _ahead.AheadFuture.__await__

    def spy(self: _ahead.AheadFuture[Any]) -> Any:
        ahead: _ahead.Ahead = self._ahead  # type: ignore[attr-defined]
        before = ahead.ends
        result = awaited(self)
        if ahead.ends != before:
            seen.append(before)
        return result

    monkeypatch.setattr(_ahead.AheadFuture, "__await__", spy)
    return seen


@durable.workflow
async def clocked(ctx: durable.Context, n: int) -> list[Any]:
    seen = []
    for i in range(n):
        value = await ctx.run(add, i, i)
        seen.append((value, ctx.now().timestamp(), ctx.info.history_size.length))
    return seen


def test_a_sequential_replay_takes_each_batch_at_the_await_and_sees_its_time(
        taken: list[int]) -> None:
    h = Harness(clocked, 5, actions=ACTIONS)
    run_live(h)
    instance = replayed(h)
    assert instance.outcome == h.instance.outcome
    times = [t for _, t, _ in h.instance.outcome.result]  # type: ignore[union-attr]
    assert times == [1001.0, 1002.0, 1003.0, 1004.0, 1005.0]  # each completion's batch
    assert len(taken) == 5  # every call's completion batch, taken where it was awaited


@durable.workflow
async def recovers(ctx: durable.Context) -> list[str]:
    seen = []
    for _ in range(3):
        try:
            await ctx.run(fail)
        except ActionFailedError as exc:
            seen.append(f"{exc.error_type} at {ctx.now().timestamp()}")
    return seen


def test_a_failed_call_raises_at_the_await_as_live(taken: list[int]) -> None:
    h = Harness(recovers, actions=ACTIONS)
    run_live(h)
    assert h.instance.outcome.result == [  # type: ignore[union-attr]
        f"ZeroDivisionError at {t}" for t in (1001.0, 1002.0, 1003.0)]
    assert replayed(h).outcome == h.instance.outcome
    assert len(taken) == 3


@durable.workflow
async def converted(ctx: durable.Context) -> list[str]:
    seen = [repr(await ctx.run(point, i)) for i in range(2)]
    try:
        await ctx.run(number)  # its recorded result is no int: the call raises
    except DurableError as exc:
        seen.append(type(exc).__name__)
    seen.append(repr(await ctx.run(point, 9)))
    return seen


def test_a_taken_outcome_is_converted_to_the_action_s_type_or_raises_as_live(
        taken: list[int]) -> None:
    h = Harness(converted, actions=ACTIONS)
    run_live(h)
    assert h.instance.outcome.result == [  # type: ignore[union-attr]
        "Point(x=0, y=0)", "Point(x=1, y=-1)", "ValidationError", "Point(x=9, y=-9)"]
    assert replayed(h).outcome == h.instance.outcome
    assert len(taken) == 4


@durable.workflow
async def watched(ctx: durable.Context) -> list[str]:
    order: list[str] = []
    fut = ctx.run(add, 1, 1)
    fut.add_done_callback(lambda _: order.append("callback"))
    await fut
    order.append("main")
    await ctx.run(add, 2, 2)
    return order


def test_a_call_with_another_waiter_lets_it_run_first(taken: list[int]) -> None:
    h = Harness(watched, actions=ACTIONS)
    run_live(h)
    assert h.instance.outcome.result == ["callback", "main"]  # type: ignore[union-attr]
    assert replayed(h).outcome == h.instance.outcome
    assert len(taken) == 1  # the second call only


@durable.workflow
async def conditioned(ctx: durable.Context) -> list[Any]:
    log: list[Any] = []
    box = [0]

    async def watcher() -> None:
        await ctx.wait_condition(lambda: box[0] > 0)
        log.append(("watcher", ctx.now().timestamp()))

    task = asyncio.ensure_future(watcher())
    box[0] = await ctx.run(add, 1, 0)
    await ctx.run(add, 2, 0)
    log.append(("main", ctx.now().timestamp()))
    await task
    return log


def test_a_condition_that_comes_true_is_seen_in_its_own_batch(taken: list[int]) -> None:
    h = Harness(conditioned, actions=ACTIONS)
    run_live(h)
    assert h.instance.outcome.result == [("watcher", 1001.0), ("main", 1002.0)]  # type: ignore[union-attr]
    assert replayed(h).outcome == h.instance.outcome


@durable.workflow
async def self_cancelled(ctx: durable.Context) -> list[str]:
    seen = []
    task = asyncio.current_task()
    assert task is not None
    task.cancel()
    try:
        await ctx.run(add, 1, 1)
        seen.append("returned")
    except asyncio.CancelledError:
        task.uncancel()
        seen.append("cancelled")
    event = await ctx.wait_for("go")  # no command: the call is the batch's last
    seen.append(str(event.payload))
    return seen


def test_a_task_that_cancelled_itself_is_cancelled_at_the_await(taken: list[int]) -> None:
    h = Harness(self_cancelled, actions=ACTIONS)
    run_live(h)
    h.give(lambda s, t: EventReceived(s, t, "go", "went"))
    run_live(h)
    assert h.instance.outcome.result == ["cancelled", "went"]  # type: ignore[union-attr]
    # As a history recorded before cancellations of calls were: nothing after the call in its
    # batch tells replay that the await was cancelled, only the task's own state.
    older = [e for e in h.history if type(e).__name__ != "ActionCancelRequested"]
    assert len(older) == len(h.history) - 1
    assert replayed(h, older).outcome == h.instance.outcome
    assert not taken


@durable.workflow
async def abandons(ctx: durable.Context) -> str:
    await ctx.run(add, 1, 1)
    abandoned = ctx.run(add, 2, 2)
    abandoned.cancel()
    await ctx.sleep(1)
    event = await ctx.wait_for("go")
    return str(event.payload)


def test_a_taken_batch_matches_its_own_cancellations(taken: list[int]) -> None:
    h = Harness(abandons, actions=ACTIONS)
    run_live(h, complete_cancelled=False)  # nothing but its cancellation ends the call
    assert not h.instance.done
    instance = replayed(h)
    assert taken  # the first call's batch was taken at its await
    go = [EventReceived(len(h.history) + 1, h.time, "go", "now")]
    live = h.instance.activate(go, h.time)
    again = instance.activate(go, h.time)
    assert live.error is None and again.error is None
    assert not any(isinstance(c, CancelAction) for c in again.commands)  # matched in replay
    assert again.commands == live.commands


def test_a_history_cut_after_a_batch_begins_replays_as_without_look_ahead(
        taken: list[int]) -> None:
    h = Harness(clocked, 3, actions=ACTIONS)
    run_live(h)
    # up to the second call's completion and its TaskCompleted, without that batch's commands
    cut = next(i for i, e in enumerate(h.history) if type(e) is TaskCompleted and e.seq > 6)
    instance = WorkflowInstance(h.defn, h.started)
    rest, failed = replay(instance, h.history[:cut + 1])
    assert failed is not None  # the code issues the third call, which that batch lacks
    assert rest == h.history[cut - 1:cut]  # the inputs of the batch that failed


@durable.workflow
async def ticks(ctx: durable.Context, n: int) -> list[Any]:
    seen = []
    for _ in range(n):
        event = await ctx.wait_for("tick")
        assert event is not None
        seen.append((event.payload, ctx.now().timestamp(), ctx.info.history_size.length))
    return seen


def give_ticks(h: Harness, payloads: list[Any]) -> None:
    run_live(h)
    for payload in payloads:
        h.time += 1.0
        h.give(lambda s, t, p=payload: EventReceived(s, t, "tick", p))
        run_live(h)


def test_an_event_wait_takes_its_event_s_batch_at_the_await(taken: list[int]) -> None:
    h = Harness(ticks, 3)
    give_ticks(h, [1, 2, 3])
    assert [p for p, _, _ in h.instance.outcome.result] == [1, 2, 3]  # type: ignore[union-attr]
    assert replayed(h).outcome == h.instance.outcome
    assert len(taken) == 3


@durable.workflow
async def two_waiters(ctx: durable.Context) -> list[str]:
    order: list[str] = []

    async def first() -> None:
        event = await ctx.wait_for("tick")
        order.append(f"first {event.payload}")  # type: ignore[union-attr]

    task = asyncio.ensure_future(first())
    await asyncio.sleep(0)  # the first waiter waits before main does
    event = await ctx.wait_for("tick")
    order.append(f"main {event.payload}")  # type: ignore[union-attr]
    await task
    return order


def test_an_event_an_earlier_waiter_takes_leaves_the_await_suspended(taken: list[int]) -> None:
    h = Harness(two_waiters)
    give_ticks(h, ["a", "b"])
    assert h.instance.outcome.result == ["first a", "main b"]  # type: ignore[union-attr]
    assert replayed(h).outcome == h.instance.outcome
    assert len(taken) == 1  # "a"'s batch, taken at main's await: it went to the first waiter
