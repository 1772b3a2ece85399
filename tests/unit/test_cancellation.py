"""Cancellation in the engine: where ``CancelledError`` lands, cleanup, shields, timeouts.

No store and no worker: the harness feeds batches and records history; every history is
replayed on a fresh instance to show that it replays without a divergence.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import durable
from durable._history import (
    ActionCancelRequested, ActionCompleted, CancelAction, CancelRequested, CancelTimer,
    CancelWorkflow, CompleteWorkflow, Event, ScheduleAction, SetState, StartTimer, StateChanged,
    TaskCompleted, TimerCancelled, TimerFired, TimerStarted, WorkflowCancelled,
)
from durable._definitions import workflow_definition
from durable._replay import WorkflowInstance, replay
from durable.errors import NonDeterminismError

from ._harness import Harness, replay_fresh


@durable.action
async def charge(amount: int) -> str:
    return f"charged {amount}"


@durable.action
async def refund(receipt: str) -> str:
    return f"refunded {receipt}"


def kinds(events: list[Event]) -> list[str]:
    return [type(e).__name__ for e in events]


def assert_replays(h: Harness) -> None:
    instance, failed = replay_fresh(h)
    assert failed is None, failed.error if failed else None
    assert instance.outcome == h.instance.outcome


def cancel(h: Harness, reason: str = "user asked") -> None:
    h.give(lambda s, t: CancelRequested(s, t, reason))


def complete(h: Harness, cmd: int, result: Any) -> None:
    h.give(lambda s, t: ActionCompleted(s, t, cmd, result))


@durable.workflow(name="compensating")
async def compensating(ctx: durable.Context) -> str:
    try:
        receipt = await ctx.run(charge, 10)
        await ctx.sleep(3600)
        return receipt
    except asyncio.CancelledError:
        ctx.set_state("compensating")
        await ctx.run(refund, "r-1")  # an ordinary await: the cancellation was delivered once
        raise


def test_cleanup_runs_actions_after_the_cancelled_error_and_ends_cancelled() -> None:
    h = Harness(compensating)
    [charge_cmd] = h.activate()
    cancel(h)  # while the charge runs
    cmds = h.activate()
    assert [type(c) for c in cmds] == [SetState, ScheduleAction, CancelAction]
    assert cmds[1].name == "refund" and cmds[2].cmd == charge_cmd.cmd
    complete(h, cmd=cmds[1].cmd, result="refunded r-1")
    complete(h, cmd=charge_cmd.cmd, result="charged 10")  # a late outcome: ignored
    assert h.activate() == [CancelWorkflow()]
    assert h.instance.state == "compensating"
    assert kinds(h.history)[-2:] == ["TaskCompleted", "WorkflowCancelled"]
    assert_replays(h)


def test_a_cancelled_timer_is_recorded_and_cleanup_may_sleep_again() -> None:
    @durable.workflow(name="napper")
    async def napper(ctx: durable.Context) -> str:
        try:
            await ctx.sleep(3600)
        except asyncio.CancelledError:
            await asyncio.sleep(5)  # cleanup on durable time too
            raise
        return "slept"

    h = Harness(napper)
    [started] = h.activate()
    cancel(h)
    cancelled, restarted = h.activate()
    assert isinstance(cancelled, CancelTimer) and cancelled.cmd == started.cmd
    assert isinstance(restarted, StartTimer) and restarted.duration == 5
    h.fire_next_timer()
    assert h.activate() == [CancelWorkflow()]
    timers = (TimerStarted, TimerFired, TimerCancelled)
    assert [type(e) for e in h.history if isinstance(e, timers)] == [
        TimerStarted, TimerCancelled, TimerStarted, TimerFired]
    assert_replays(h)


def test_a_workflow_that_catches_the_cancellation_may_complete() -> None:
    @durable.workflow(name="stubborn")
    async def stubborn(ctx: durable.Context) -> str:
        try:
            await ctx.wait_for("never")
        except asyncio.CancelledError:
            return "finished anyway"
        return "got the event"

    h = Harness(stubborn)
    h.run()
    cancel(h)
    assert h.run() == CompleteWorkflow("finished anyway")
    assert_replays(h)


def test_shielded_action_keeps_running_and_its_result_is_still_awaited() -> None:
    @durable.workflow(name="shielded")
    async def shielded(ctx: durable.Context) -> str:
        payment = asyncio.ensure_future(ctx.run(charge, 5))
        try:
            return await asyncio.shield(payment)
        except asyncio.CancelledError:
            receipt = await payment  # the shield kept the call alive
            await ctx.run(refund, receipt)
            raise

    h = Harness(shielded)
    [charge_cmd] = h.activate()
    cancel(h)
    assert h.activate() == []  # no CancelAction: the call is shielded
    complete(h, charge_cmd.cmd, "charged 5")
    [refund_cmd] = h.activate()
    assert refund_cmd.args == ["charged 5"]
    complete(h, refund_cmd.cmd, "refunded")
    assert h.activate() == [CancelWorkflow()]
    assert not any(isinstance(e, ActionCancelRequested) for e in h.history)
    assert_replays(h)


@durable.workflow(name="bounded")
async def bounded(ctx: durable.Context) -> str:
    try:
        async with asyncio.timeout(30):  # durable time: a timer, recorded
            return await ctx.run(charge, 1)
    except TimeoutError:
        return f"gave up at +{(ctx.now().timestamp() - 1_000):g}s"


def test_asyncio_timeout_runs_on_durable_time_and_cancels_the_call() -> None:
    h = Harness(bounded)
    timer, charge_cmd = h.activate()
    assert isinstance(timer, StartTimer) and timer.duration == 30
    h.fire_next_timer()
    assert h.activate() == [CancelAction(charge_cmd.cmd), CompleteWorkflow("gave up at +30s")]
    assert_replays(h)


def test_asyncio_timeout_that_does_not_expire_cancels_its_timer() -> None:
    h = Harness(bounded)
    timer, charge_cmd = h.activate()
    complete(h, charge_cmd.cmd, "charged 1")
    commands = h.activate()
    assert [type(c).__name__ for c in commands] == ["CancelTimer", "CompleteWorkflow"]
    assert commands[0].cmd == timer.cmd
    assert_replays(h)


def test_wait_for_and_task_cancel_cancel_their_calls() -> None:
    @durable.workflow(name="racing")
    async def racing(ctx: durable.Context) -> list[str]:
        out = []
        try:
            out.append(await asyncio.wait_for(ctx.run(charge, 1), timeout=10))
        except TimeoutError:
            out.append("timeout")
        task = asyncio.ensure_future(ctx.run(charge, 2))
        await asyncio.sleep(1)
        task.cancel()
        out.append(await ctx.run(refund, "x"))
        return out

    h = Harness(racing)
    first, _ = h.activate()
    h.fire_next_timer()  # wait_for times out: the call is cancelled
    second, nap, cancelled = h.activate()
    assert isinstance(nap, StartTimer) and cancelled == CancelAction(first.cmd)
    h.fire_next_timer()  # task.cancel()
    last, cancelled = h.activate()
    assert cancelled == CancelAction(second.cmd)
    complete(h, last.cmd, "refunded x")
    assert h.activate() == [CompleteWorkflow(["timeout", "refunded x"])]
    assert [e.cmd for e in h.history if isinstance(e, ActionCancelRequested)] == [
        first.cmd, second.cmd]
    assert_replays(h)


def test_cancelled_calls_are_recorded_before_the_end_of_the_workflow() -> None:
    @durable.workflow(name="gives_up")
    async def gives_up(ctx: durable.Context) -> None:
        await asyncio.gather(ctx.run(charge, 1), ctx.run(charge, 2))

    h = Harness(gives_up)
    a, b = h.activate()
    cancel(h)
    assert h.activate() == [CancelAction(a.cmd), CancelAction(b.cmd), CancelWorkflow()]
    assert_replays(h)


def test_history_recorded_before_action_cancellations_were_recorded_still_replays() -> None:
    h = Harness(compensating)
    h.activate()
    cancel(h)
    h.activate()
    # What an older durable wrote: the same history without ActionCancelRequested.
    h.history = [e for e in h.history if not isinstance(e, ActionCancelRequested)]
    h.history = [type(e)(i + 1, *[getattr(e, f) for f in e.__struct_fields__[1:]])
                 for i, e in enumerate(h.history)]
    instance, failed = replay_fresh(h)
    assert failed is None
    assert instance.state == "compensating"


def test_a_recorded_cancellation_the_code_no_longer_makes_is_a_divergence() -> None:
    h = Harness(compensating)
    h.activate()
    cancel(h)
    h.activate()  # recorded: StateChanged, ActionScheduled(refund), ActionCancelRequested

    @durable.workflow(name="compensating")
    async def shields_the_charge(ctx: durable.Context) -> str:
        try:
            receipt = await asyncio.shield(ctx.run(charge, 10))
            await ctx.sleep(3600)
            return receipt
        except asyncio.CancelledError:
            ctx.set_state("compensating")
            await ctx.run(refund, "r-1")
            raise

    instance = WorkflowInstance(workflow_definition(shields_the_charge), h.started)
    _, failed = replay(instance, h.history)
    assert isinstance(failed.error, NonDeterminismError)
    assert isinstance(failed.error.recorded, ActionCancelRequested)


def test_a_recorded_command_never_issued_at_the_end_of_a_batch_is_reported_not_raised() -> None:
    @durable.workflow(name="short")
    async def short(ctx: durable.Context) -> None:
        await ctx.wait_for("x")

    h = Harness(short)
    h.run()
    h.history.append(StateChanged(len(h.history) + 1, 1_000.0, "left over"))
    instance, failed = replay_fresh(h)  # used to raise the engine's internal _Abort
    assert isinstance(failed.error, NonDeterminismError)
    assert isinstance(failed.error.recorded, StateChanged)
    assert instance.activate([], 2_000.0).error is failed.error


def test_cancel_reason_reaches_the_cancelled_error() -> None:
    seen: list[Any] = []

    @durable.workflow(name="reasons")
    async def reasons(ctx: durable.Context) -> None:
        try:
            await ctx.wait_for("never")
        except asyncio.CancelledError as exc:
            seen.append(exc.args)
            raise

    h = Harness(reasons)
    h.run()
    cancel(h, "budget cut")
    assert h.run() == CancelWorkflow()
    assert seen == [("budget cut",)]
    assert isinstance(h.history[-1], WorkflowCancelled)


@pytest.mark.parametrize("wf", [compensating, bounded])
def test_cancellation_histories_replay_identically_twice(wf: Any) -> None:
    h = Harness(wf)
    h.activate()
    cancel(h)
    h.run()
    first, second = replay_fresh(h)[0], replay_fresh(h)[0]
    assert first.outcome == second.outcome == h.instance.outcome


async def test_a_poller_cancelled_just_as_it_is_woken_ends_cancelled() -> None:
    from durable._stores import Wakeup

    wakeup = Wakeup()
    poller = asyncio.create_task(wakeup.wait(10.0))
    await asyncio.sleep(0)  # it waits now
    wakeup.notify()  # its wake-up is due on the next turn of the loop ...
    poller.cancel()  # ... and so is its cancellation
    with pytest.raises(asyncio.CancelledError):
        await poller
    assert poller.cancelled()
