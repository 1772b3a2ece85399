"""``ctx.patched()``: new code takes a new path; histories recorded before replay the old one."""

from __future__ import annotations

from typing import Any, Callable

import pytest

import durable
from durable._definitions import workflow_definition
from durable._history import (
    ActionScheduled, CompleteWorkflow, MarkPatched, Patched, ScheduleAction, TaskCompleted,
    WorkflowCompleted,
)
from durable._replay import WorkflowInstance, replay
from durable.errors import NonDeterminismError, ValidationError

from ._harness import Harness

ACTIONS: dict[str, Callable[..., Any]] = {
    "fee_v1": lambda amount: amount // 10, "fee_v2": lambda amount: amount // 20,
    "notify": lambda text: text}


@durable.action
async def fee_v1(amount: int) -> int:
    return amount // 10


@durable.action
async def fee_v2(amount: int) -> int:
    return amount // 20


@durable.action
async def notify(text: str) -> str:
    return text


async def _v1(ctx: durable.Context, amount: int) -> int:
    fee = await ctx.run(fee_v1, amount)
    await ctx.run(notify, "charged")
    return fee


async def _v2(ctx: durable.Context, amount: int) -> int:
    if ctx.patched("fee-v2"):
        fee = await ctx.run(fee_v2, amount)
    else:
        fee = await ctx.run(fee_v1, amount)
    await ctx.run(notify, "charged")
    return fee


async def _v3(ctx: durable.Context, amount: int) -> int:  # the patch removed, new path kept
    fee = await ctx.run(fee_v2, amount)
    await ctx.run(notify, "charged")
    return fee


def billing(body: Any) -> Any:
    """``body`` as the workflow named "Billing" (each version replaces the last)."""
    return durable.workflow(name="Billing")(body)


def record(body: Any, amount: int = 1000) -> Harness:
    h = Harness(billing(body), amount, actions=ACTIONS)
    h.run()
    return h


def replay_with(body: Any, h: Harness) -> tuple[WorkflowInstance, Any]:
    instance = WorkflowInstance(workflow_definition(billing(body)), h.started)
    _, failed = replay(instance, h.history)
    return instance, failed


def test_live_code_takes_the_new_path_and_records_a_marker() -> None:
    h = record(_v2)
    assert h.instance.outcome == CompleteWorkflow(50)
    assert isinstance(h.history[2], Patched) and h.history[2].patch_id == "fee-v2"
    # a marker numbers no command: the calls keep the numbers they would have without it
    assert [e.cmd for e in h.history if isinstance(e, ActionScheduled)] == [0, 1]
    assert h.instance.patches == {"fee-v2": True}


def test_a_history_recorded_before_the_change_replays_the_old_path() -> None:
    old = record(_v1)
    instance, failed = replay_with(_v2, old)
    assert failed is None and instance.outcome == CompleteWorkflow(100)
    assert instance.patches == {"fee-v2": False}


def test_a_history_recorded_after_the_change_replays_the_new_path() -> None:
    new = record(_v2)
    instance, failed = replay_with(_v2, new)
    assert failed is None and instance.outcome == CompleteWorkflow(50)
    assert instance.patches == {"fee-v2": True}


def test_an_execution_recorded_before_the_change_keeps_the_old_path_when_it_goes_on() -> None:
    @durable.workflow(name="Looping")
    async def v1(ctx: durable.Context) -> list[int]:
        out = [await ctx.run(fee_v1, 100)]
        await ctx.wait_for("next")
        out.append(await ctx.run(fee_v1, 100))
        return out

    h = Harness(v1, actions=ACTIONS)
    h.run()  # waits for "next", recorded by the old code

    @durable.workflow(name="Looping")
    async def v2(ctx: durable.Context) -> list[int]:
        out = []
        for i in range(2):
            fee = fee_v2 if ctx.patched("fee-v2") else fee_v1
            out.append(await ctx.run(fee, 100))
            if i == 0:
                await ctx.wait_for("next")
        return out

    instance = WorkflowInstance(workflow_definition(v2), h.started)
    inputs, failed = replay(instance, h.history)
    assert failed is None and instance.patches == {"fee-v2": False}
    h.instance = instance
    from durable._history import EventReceived

    h.give(lambda s, t: EventReceived(s, t, "next"))
    assert h.run() == CompleteWorkflow([10, 10])  # the second call too: decided once per run
    assert not any(isinstance(e, Patched) for e in h.history)


def test_removing_a_patch_too_early_is_caught_as_non_determinism() -> None:
    old = record(_v1)  # an execution that took the old path
    _, failed = replay_with(_v3, old)
    error = failed.error
    assert isinstance(error, NonDeterminismError)
    assert isinstance(error.recorded, ActionScheduled) and error.recorded.name == "fee_v1"
    assert isinstance(error.command, ScheduleAction) and error.command.name == "fee_v2"
    assert "test_patching.py" in error.location


def test_removing_a_patch_no_execution_depends_on_is_safe() -> None:
    new = record(_v2)  # took the new path: its marker is skipped by code without the call
    instance, failed = replay_with(_v3, new)
    assert failed is None and instance.outcome == CompleteWorkflow(50)
    assert instance.patches == {"fee-v2": True}


def test_markers_of_removed_calls_are_skipped_wherever_they_are() -> None:
    @durable.workflow(name="Markers")
    async def with_calls(ctx: durable.Context) -> str:
        ctx.patched("first")
        await ctx.run(notify, "a")
        ctx.patched("at-the-end-of-a-batch")
        await ctx.wait_for("go")
        ctx.patched("before-the-end")
        return "done"

    h = Harness(with_calls, actions=ACTIONS)
    h.run()
    from durable._history import EventReceived

    h.give(lambda s, t: EventReceived(s, t, "go"))
    h.run()
    assert [e.patch_id for e in h.history if isinstance(e, Patched)] == [
        "first", "at-the-end-of-a-batch", "before-the-end"]

    @durable.workflow(name="Markers")
    async def without_calls(ctx: durable.Context) -> str:
        await ctx.run(notify, "a")
        await ctx.wait_for("go")
        return "done"

    instance = WorkflowInstance(workflow_definition(without_calls), h.started)
    _, failed = replay(instance, h.history)
    assert failed is None and instance.done
    assert instance.patches == {"first": True, "at-the-end-of-a-batch": True,
                                "before-the-end": True}


def test_several_patches_at_one_point_in_any_order() -> None:
    @durable.workflow(name="Pair")
    async def pair(ctx: durable.Context) -> list[bool]:
        return [ctx.patched("a"), ctx.patched("b")]

    h = Harness(pair)
    assert h.run() == CompleteWorkflow([True, True])

    @durable.workflow(name="Pair")
    async def swapped(ctx: durable.Context) -> list[bool]:
        return [ctx.patched("b"), ctx.patched("a"), ctx.patched("c")]

    instance = WorkflowInstance(workflow_definition(swapped), h.started)
    _, failed = replay(instance, h.history)
    assert failed is None and instance.outcome == CompleteWorkflow([True, True, False])


def test_a_patch_asked_twice_gets_one_answer_and_one_marker() -> None:
    @durable.workflow(name="Twice")
    async def twice(ctx: durable.Context) -> list[bool]:
        first = ctx.patched("x")
        await ctx.run(notify, "between")
        return [first, ctx.patched("x")]

    h = Harness(twice, actions=ACTIONS)
    assert h.run() == CompleteWorkflow([True, True])
    assert len([e for e in h.history if isinstance(e, Patched)]) == 1


@pytest.mark.parametrize("bad", [None, 3, "", b"fee"])
def test_a_patch_id_must_be_a_non_empty_str(bad: Any) -> None:
    @durable.workflow(name="BadPatch")
    async def bad_patch(ctx: durable.Context) -> bool:
        return ctx.patched(bad)

    outcome = Harness(bad_patch).run()
    assert outcome.error.type == ValidationError.__qualname__
    assert "non-empty str patch id" in outcome.error.message


def test_replayer_reports_which_path_each_patch_takes() -> None:
    old, new = record(_v1), record(_v2)
    replayer = durable.Replayer([billing(_v2)])
    assert replayer.replay(old.history).patches == {"fee-v2": False}
    assert replayer.replay(new.history).patches == {"fee-v2": True}


def test_a_patched_history_round_trips_through_json() -> None:
    from durable._history import decode_history_json, encode_history_json

    new = record(_v2)
    assert decode_history_json(encode_history_json(new.history)) == new.history
    assert [type(e) for e in new.history[1:4]] == [TaskCompleted, Patched, ActionScheduled]
    assert isinstance(new.history[-1], WorkflowCompleted)
    assert MarkPatched("fee-v2").to_event(3, 0.0) == Patched(3, 0.0, "fee-v2")


async def test_a_refused_call_before_a_patch_marker_replays() -> None:
    """A call refused live (its payload too deep) records nothing; a ``Patched`` marker after
    it is the next recorded event, and replay must still refuse the call, not diverge."""
    from durable.errors import PayloadError

    @durable.action(name="PatchEcho")
    async def echo(value: object) -> object:
        return value

    @durable.workflow(name="PatchRefused")
    async def refused(ctx: durable.Context) -> list[str]:
        deep: object = 0
        for _ in range(100):
            deep = [deep]
        outcome = []
        try:
            await ctx.run(echo, deep)
        except PayloadError:
            outcome.append("PayloadError")
        outcome.append("new" if ctx.patched("p") else "old")
        return outcome

    async with durable.testing.Environment(workflows=[refused], actions=[echo]) as env:
        handle = await env.client.start(refused, id="refused")
        assert await handle.result(timeout=5) == ["PayloadError", "new"]
        history = await handle.history()
    result = durable.Replayer([refused], [echo], strict=True).replay(history)
    assert result.done and result.patches == {"p": True}
