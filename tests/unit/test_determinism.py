"""asyncio inside workflows replays identically, and replay never hands an outcome to the
wrong command.

asyncio keeps tasks and futures in sets; a set of objects hashed by memory address is iterated
in another order by a rebuilt instance. These tests run the idioms that iterate such sets
(``asyncio.wait`` then cancelling the losers, ``TaskGroup``, ``as_completed``) live, rebuilt
from history at every task (``always_replay``) and through ``durable.Replayer``, after
shuffling the free memory so that a replay's objects land at other addresses.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import warnings
from typing import Any

import pytest

import durable
from durable._history import (
    ActionScheduled, DataChanged, Event, StateChanged, TaskCompleted, TimerStarted,
)
from durable.errors import NonDeterminismError
from durable.testing import Environment

BRANCHES = 8  # enough that a replay in address order is not by chance the recorded order


def _scramble_memory() -> None:
    """Free many objects of the sizes of tasks and futures in a random order, so that the
    next ones allocated get addresses in no particular order."""
    loop = asyncio.new_event_loop()
    try:
        junk: list[Any] = [loop.create_future() for _ in range(2_000)]
        junk += [bytearray(200) for _ in range(2_000)]
        random.Random(7).shuffle(junk)
        while junk:
            del junk[-100:]
    finally:
        loop.close()


@durable.action
async def work(i: int) -> int:
    return i * 10


@durable.workflow
async def race_then_cancel(ctx: durable.Context) -> list[str]:
    """The idiomatic race: the losers are cancelled in the order of the ``pending`` set."""
    cancelled: list[str] = []

    async def branch(i: int) -> int:
        try:
            await ctx.sleep(10 + i)
        except asyncio.CancelledError:
            cancelled.append(f"b{i}")
            ctx.set_state(f"last cancelled: b{i}")
            await ctx.run(work, i)  # clean-up that issues a command
            raise
        return i

    tasks = [asyncio.ensure_future(branch(i)) for i in range(BRANCHES)]
    tasks.append(asyncio.ensure_future(ctx.run(work, 99)))
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return cancelled


@durable.workflow
async def task_group_failure(ctx: durable.Context) -> list[str]:
    """A failed task in a TaskGroup cancels its siblings by iterating a set of tasks."""
    cancelled: list[str] = []

    async def sibling(i: int) -> None:
        try:
            await ctx.sleep(100)
        except asyncio.CancelledError:
            cancelled.append(f"t{i}")
            ctx.data[f"t{i}"] = len(cancelled)
            raise

    async def failing() -> None:
        await ctx.run(work, 1)
        raise ValueError("boom")

    try:
        async with asyncio.TaskGroup() as group:
            for i in range(BRANCHES):
                group.create_task(sibling(i))
            group.create_task(failing())
    except* ValueError:
        cancelled.append("group failed")
    return cancelled


@durable.workflow
async def completed_in_turn(ctx: durable.Context) -> list[list[int]]:
    """``as_completed`` over coroutines that call one action with different arguments."""
    async def one(i: int) -> list[int]:
        return [i, await ctx.run(work, i)]

    return [await next_one for next_one in asyncio.as_completed([one(i) for i in range(BRANCHES)])]


@pytest.mark.parametrize("wf", [race_then_cancel, task_group_failure, completed_in_turn])
async def test_set_iterating_idioms_replay_identically(wf: Any) -> None:
    async with Environment([wf], [work]) as env:
        handle = await env.client.start(wf, id="live")
        live = await handle.result()
        history = await handle.history()
        state = (await handle.describe()).state
    async with Environment([wf], [work], always_replay=True) as env:
        handle = await env.client.start(wf, id="rebuilt")
        assert await handle.result() == live  # a divergence would hold it (WorkflowHeldError)
    _scramble_memory()
    replayed = durable.Replayer([wf], [work]).replay(history)
    assert replayed.done and replayed.state == state


def test_as_completed_hands_each_coroutine_its_own_result() -> None:
    """The silent case: one action name, so a reorder used to pass with results swapped."""
    from durable._replay import WorkflowInstance

    from ._harness import Harness

    h = Harness(completed_in_turn, actions={"work": lambda i: i * 10})
    outcome = h.run()
    assert outcome is not None and outcome.result == [[i, i * 10] for i in range(BRANCHES)]
    _scramble_memory()
    instance = WorkflowInstance(h.defn, h.started)
    from durable._replay import replay
    _, failed = replay(instance, h.history)
    assert failed is None and instance.outcome == outcome


def test_tasks_hash_by_creation_order_and_wait_sets_follow_its_arguments() -> None:
    from ._harness import Harness

    seen: list[list[Any]] = []

    @durable.workflow(name="hashes")
    async def hashes(ctx: durable.Context) -> None:
        tasks = [asyncio.ensure_future(asyncio.sleep(0)) for _ in range(3)]
        calls = [ctx.run(work, i) for i in (3, 1, 2)]  # futures, not tasks
        done, pending = await asyncio.wait(calls, return_when=asyncio.ALL_COMPLETED)
        seen.append([hash(t) for t in tasks] + [[f.result() for f in done], len(pending)])
        await asyncio.gather(*tasks)
        done.add(tasks[0])  # added later: after the arguments, in the order added
        seen.append([done.pop().result(), list(done)[-1] is tasks[0]])

    for _ in range(2):
        Harness(hashes, actions={"work": lambda i: i * 10}).run()
    first, popped, second, _ = seen
    assert first == second
    assert first[:3] == sorted(first[:3])  # numbered in creation order
    assert first[3:] == [[30, 10, 20], 0]  # done iterates in the order wait was given
    assert popped == [30, True]


# ---- changed commands: which are errors, which warnings --------------------------------------


@durable.workflow(name="two_calls")
async def two_calls(ctx: durable.Context) -> int:
    a = await ctx.run(work, 1)
    b = await ctx.run(work, 2)
    ctx.set_state("done")
    ctx.data["sum"] = a + b
    return a + b


def _recorded() -> Any:
    from ._harness import Harness

    h = Harness(two_calls, actions={"work": lambda i: i * 10})
    h.run()
    return h


def _replay(h: Any, history: list[Event], *, strict: bool = False) -> Any:
    from durable._replay import WorkflowInstance, replay

    instance = WorkflowInstance(h.defn, h.started, strict=strict)
    _, failed = replay(instance, history)
    return failed


def _edit(history: list[Event], kind: type, index: int, **changes: Any) -> list[Event]:
    import msgspec

    events = list(history)
    at = [i for i, e in enumerate(events) if type(e) is kind][index]
    events[at] = msgspec.structs.replace(events[at], **changes)  # type: ignore[type-var]
    return events


def test_swapped_action_calls_are_an_error_not_swapped_results() -> None:
    h = _recorded()
    # Recorded: work(2) then work(1); the code calls work(1) first: each call would get the
    # other's result. A later recorded call has exactly the new arguments: an error.
    history = _edit(_edit(h.history, ActionScheduled, 0, args=[2]), ActionScheduled, 1, args=[1])
    failed = _replay(h, history)
    assert failed is not None and isinstance(failed.error, NonDeterminismError)
    assert "another order than recorded" in str(failed.error)
    assert isinstance(failed.error.recorded, ActionScheduled) and failed.error.recorded.args == [2]


def test_a_changed_argument_that_nothing_else_has_warns_and_strict_fails() -> None:
    h = _recorded()
    history = _edit(h.history, ActionScheduled, 0, args=[5])
    with pytest.warns(durable.NonDeterminismWarning, match=r"arguments of action 'work' "
                                                           r"changed since it was recorded \(\[5\] -> \[1\]\)"):
        assert _replay(h, history) is None
    failed = _replay(h, history, strict=True)
    assert failed is not None and "replay is strict" in str(failed.error)


def test_a_changed_data_value_is_caught_like_a_changed_argument() -> None:
    h = _recorded()
    history = _edit(h.history, DataChanged, 0, value=999)
    with pytest.warns(durable.NonDeterminismWarning, match=r"ctx.data\['sum'\] changed"):
        assert _replay(h, history) is None
    failed = _replay(h, history, strict=True)
    assert failed is not None and isinstance(failed.error.recorded, DataChanged)


def test_a_changed_state_warns_and_strict_fails() -> None:
    h = _recorded()
    history = _edit(h.history, StateChanged, 0, state="other")
    with pytest.warns(durable.NonDeterminismWarning, match="the state changed"):
        assert _replay(h, history) is None
    assert _replay(h, history, strict=True) is not None


@durable.workflow(name="two_timers")
async def two_timers(ctx: durable.Context) -> None:
    await asyncio.gather(ctx.sleep(5), ctx.sleep(10))


def test_swapped_timers_are_an_error_and_a_changed_duration_warns() -> None:
    from ._harness import Harness

    h = Harness(two_timers)
    h.run()
    swapped = _edit(_edit(h.history, TimerStarted, 0, duration=10.0), TimerStarted, 1,
                    duration=5.0)
    failed = _replay(h, swapped)
    assert failed is not None and "another order than recorded" in str(failed.error)
    changed = _edit(h.history, TimerStarted, 0, duration=7.0)
    with pytest.warns(durable.NonDeterminismWarning, match=r"timer's duration changed"):
        assert _replay(h, changed) is None


@durable.workflow(name="wait_for_a_step")
async def wait_for_a_step(ctx: durable.Context) -> bool:
    try:
        async with asyncio.timeout(0.05):  # call_at(loop.time() + 0.05), as wait_for on 3.12
            await ctx.sleep(10)
    except TimeoutError:
        return False
    return True


def test_a_duration_off_by_a_loop_time_s_rounding_is_the_same_timer() -> None:
    from ._harness import Harness

    h = Harness(wait_for_a_step)
    h.run()
    # The same timeout recorded at another time, or by another Python (wait_for: call_later
    # on 3.11, call_at on 3.12): when - loop.time() at epoch magnitude is an ulp or two of
    # the time away from the duration the code asked for.
    timers = [e for e in h.history if type(e) is TimerStarted]
    at = next(i for i, e in enumerate(timers) if abs(e.duration - 0.05) < 1e-6)
    for rounded in (0.04999995231628418, 0.05, 0.05000004768371582):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert _replay(h, _edit(h.history, TimerStarted, at, duration=rounded),
                           strict=True) is None
    # a change, not a rounding
    assert _replay(h, _edit(h.history, TimerStarted, at, duration=0.051), strict=True) is not None


@dataclasses.dataclass
class Order:
    id: str
    rush: bool = False  # added after executions recorded Order without it


@durable.action(name="ship_order")
async def ship(order: Order) -> str:
    return order.id


@durable.workflow(name="ships")
async def ships(ctx: durable.Context) -> str:
    return await ctx.run(ship, Order("o-1"))


def test_recorded_arguments_are_read_with_todays_types_first() -> None:
    """An argument recorded before a field with a default was added is not a change."""
    from ._harness import Harness

    h = Harness(ships, actions={"ship_order": lambda order: order["id"]})
    h.run()
    history = _edit(h.history, ActionScheduled, 0, args=[{"id": "o-1"}])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _replay(h, history) is None
