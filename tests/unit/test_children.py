"""Child workflows in the engine: ``ctx.start_child``, the inputs a parent gets, the effects.

The harness plays the store's part: it feeds ``ChildStarted`` / ``ChildStartFailed`` and the
child's end to the parent, as the commits of the parent and of the child would.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

import durable
from durable._history import (
    CancelChild, CancelRequested, CancelWorkflow, ChildCancelled, ChildCompleted, ChildFailed,
    ChildInitiated, ChildStarted, ChildStartFailed, CompleteWorkflow, ContinueAsNew, ErrorInfo,
    FailWorkflow, ParentRef, StartChild, WorkflowStarted,
)
from durable._replay import WorkflowInstance
from durable._stores import WorkflowTask
from durable._worker._effects import child_cancel, child_start, ending
from durable.errors import UnknownWorkflowError, ValidationError

from ._harness import Harness, replay_fresh


@dataclass
class Receipt:
    amount: int
    id: str


@durable.workflow(name="Charge", version="4")
async def charge(ctx: durable.Context, amount: int) -> Receipt:
    return Receipt(amount, "r-1")


@durable.workflow(name="Order")
async def order(ctx: durable.Context, amount: int) -> str:
    child = await ctx.start_child(charge, amount, id="charge-1")
    receipt = await child
    return f"{receipt.id}:{receipt.amount} from {child.workflow_id}"


def started(h: Harness, cmd: int) -> None:
    h.give(lambda s, t: ChildStarted(s, t, cmd))


def assert_replays(h: Harness) -> WorkflowInstance:
    instance, failed = replay_fresh(h)
    assert failed is None, failed.error if failed else None
    assert instance.outcome == h.instance.outcome
    return instance


def test_a_child_is_started_then_awaited_for_its_typed_result() -> None:
    h = Harness(order, 30)
    [command] = h.activate()
    assert isinstance(command, StartChild)
    run_id = uuid.uuid5(uuid.NAMESPACE_URL, "durable:run-1:child:0").hex
    assert command == StartChild(0, "Charge", "4", "charge-1", run_id, [30], {}, "cancel")
    assert h.activate() == []  # nothing yet: the start is not confirmed
    started(h, 0)
    assert h.activate() == []  # started: now it waits for the child's end
    h.give(lambda s, t: ChildCompleted(s, t, 0, {"amount": 30, "id": "r-1"}))
    assert h.activate() == [CompleteWorkflow("r-1:30 from charge-1")]
    assert isinstance(h.history[2], ChildInitiated)
    assert_replays(h)


def test_a_taken_child_id_is_a_clear_error_in_the_parent() -> None:
    h = Harness(order, 30)
    h.activate()
    h.give(lambda s, t: ChildStartFailed(s, t, 0))
    [outcome] = h.activate()
    assert isinstance(outcome, FailWorkflow)
    assert outcome.error.type == "WorkflowAlreadyStartedError"
    assert "'charge-1' exists already in tenant 't'" in outcome.error.message
    assert h.instance.children.to_cancel_at_close() == []  # not ours: never cancelled
    assert_replays(h)


@durable.workflow(name="Tolerant")
async def tolerant(ctx: durable.Context) -> list[str]:
    out = []
    for i in range(2):
        try:
            out.append(str(await (await ctx.start_child(charge, i, id=f"c{i}"))))
        except durable.errors.WorkflowFailedError as exc:
            out.append(f"failed {exc.workflow_id}: {exc.error_type}: {exc.error_message}")
        except durable.errors.WorkflowCancelledError as exc:
            out.append(f"cancelled {exc.workflow_id}")
    return out


def test_a_child_that_fails_or_is_cancelled_raises_in_the_parent() -> None:
    h = Harness(tolerant)
    h.activate()
    started(h, 0)
    h.give(lambda s, t: ChildFailed(s, t, 0, ErrorInfo("KeyError", "'sku'", "tb")))
    [second] = h.activate()
    assert second.workflow_id == "c1"
    started(h, second.cmd)
    h.give(lambda s, t: ChildCancelled(s, t, second.cmd))
    assert h.activate() == [CompleteWorkflow(["failed c0: KeyError: 'sku'", "cancelled c1"])]
    assert_replays(h)


@durable.workflow(name="Impatient")
async def impatient(ctx: durable.Context, policy: str) -> str:
    child = await ctx.start_child(charge, 1, id="slow-child", parent_close=policy)
    try:
        async with asyncio.timeout(10):
            return str(await child)
    except TimeoutError:
        return "gave up"


def test_a_child_whose_parent_stops_waiting_is_cancelled_unless_abandoned() -> None:
    for policy, cancels in (("cancel", [CancelChild(0, "slow-child", None,
                                                    "the parent workflow stopped waiting for it")]),
                            ("abandon", [])):
        h = Harness(impatient, policy)
        h.activate()
        started(h, 0)
        [timer] = h.activate()
        h.fire_next_timer()
        commands = h.activate()
        assert commands[:-1] == cancels and commands[-1] == CompleteWorkflow("gave up")
        assert_replays(h)


def test_a_parent_cancelled_while_waiting_cancels_its_child() -> None:
    h = Harness(order, 5)
    h.activate()
    started(h, 0)
    h.activate()
    h.give(lambda s, t: CancelRequested(s, t, "stop"))
    cancel, end = h.activate()
    assert isinstance(cancel, CancelChild) and cancel.workflow_id == "charge-1"
    assert cancel.run_id is None  # confirmed: whatever run of the child is current
    assert end == CancelWorkflow()
    assert_replays(h)


def test_handle_cancel_asks_once_and_the_child_reports_its_end() -> None:
    @durable.workflow(name="Canceller")
    async def canceller(ctx: durable.Context) -> str:
        child = await ctx.start_child(charge, 1, id="c")
        await child.cancel("not needed")  # awaitable, like WorkflowHandle.cancel()
        child.cancel("again")  # and issued at the call without an await
        try:
            return str(await child)
        except durable.errors.WorkflowCancelledError:
            return "cancelled"

    h = Harness(canceller)
    h.activate()
    started(h, 0)
    assert h.activate() == [CancelChild(0, "c", None, "not needed")]  # names the child
    h.give(lambda s, t: ChildCancelled(s, t, 0))
    assert h.activate() == [CompleteWorkflow("cancelled")]
    assert_replays(h)


def test_children_to_cancel_when_the_run_ends() -> None:
    @durable.workflow(name="Spawner")
    async def spawner(ctx: durable.Context) -> None:
        await ctx.start_child(charge, 1, id="confirmed")
        await ctx.start_child(charge, 2, id="abandoned", parent_close="abandon")
        ctx.start_child(charge, 3, id="just-started")
        await ctx.wait_for("never")

    h = Harness(spawner)
    h.activate()
    started(h, 0)
    h.activate()
    started(h, 1)
    commands = h.activate()
    assert [c.workflow_id for c in commands] == ["just-started"]
    assert h.instance.children.to_cancel_at_close() == [
        ("confirmed", None), ("just-started", commands[0].run_id)]


def test_bad_calls_are_typed_errors_at_the_call() -> None:
    errors: list[str] = []

    @durable.workflow(name="Misuse")
    async def misuse(ctx: durable.Context) -> list[str]:
        calls: list[Any] = [
            lambda: ctx.start_child("NoSuchWorkflow"),
            lambda: ctx.start_child(charge, "not an int"),
            lambda: ctx.start_child(charge, 1, 2),
            lambda: ctx.start_child(charge, 1, parent_close="terminate"),
            lambda: ctx.start_child(charge, 1, id=ctx.info.workflow_id),
            lambda: ctx.start_child(charge, 1, id=""),
        ]
        for call in calls:
            try:
                call()
            except (UnknownWorkflowError, ValidationError) as exc:
                errors.append(type(exc).__name__)
        return errors

    h = Harness(misuse)
    assert h.run() == CompleteWorkflow(["UnknownWorkflowError"] + ["ValidationError"] * 5)
    assert not any(isinstance(e, ChildInitiated) for e in h.history)


def test_a_changed_child_id_on_replay_warns_and_keeps_the_recorded_child() -> None:
    h = Harness(order, 30)
    h.activate()
    h.history[2] = ChildInitiated(*[getattr(h.history[2], f) for f in
                                    h.history[2].__struct_fields__[:5]], "old-id",
                                  h.history[2].run_id, [30])
    started(h, 0)
    h.activate()
    with pytest.warns(durable.NonDeterminismWarning, match="child workflow 'Charge'"):
        instance, failed = replay_fresh(h)
    assert failed is None and instance.children.by_cmd[0].workflow_id == "old-id"


# ---- the commit effects the worker derives ----------------------------------------------------


def test_the_effects_of_starting_cancelling_and_ending() -> None:
    task = WorkflowTask("t", "parent", "Order")
    command = StartChild(3, "Charge", "4", "c", "child-run", [1], {}, "cancel")
    start = child_start(task, "parent-run", command)
    assert start.started == WorkflowStarted(1, 0.0, "Charge", "4", "c", "child-run", "t", [1],
                                            parent=ParentRef("parent", "parent-run", 3))
    assert start.on_started == ChildStarted(0, 0.0, 3)
    assert start.on_exists == ChildStartFailed(0, 0.0, 3)
    signal = child_cancel(task, CancelChild(4, "c", "child-run", "why"))
    assert (signal.workflow_id, signal.dedup, signal.run_id, signal.event.reason) == (
        "c", "cancel", "child-run", "why")

    child = WorkflowInstance(durable._definitions.workflow_definition(charge), start.started)
    child.activate([start.started], 1_000.0)
    starts, [report] = ending(child)
    assert starts == []
    assert (report.workflow_id, report.run_id, report.dedup) == ("parent", "parent-run", "c3")
    assert report.event == ChildCompleted(0, 0.0, 3, {"amount": 1, "id": "r-1"})


def test_a_child_that_continues_as_new_keeps_its_parent_and_reports_at_the_end() -> None:
    @durable.workflow(name="ContinuingChild")
    async def continuing(ctx: durable.Context, n: int) -> int:
        if n:
            ctx.continue_as_new(n - 1)
        return 7

    parent = ParentRef("p", "p-run", 2)
    first = WorkflowStarted(1, 0.0, "ContinuingChild", "1", "c", "c-run", "t", [1],
                            parent=parent)
    instance = WorkflowInstance(durable._definitions.workflow_definition(continuing), first)
    instance.activate([first], 1_000.0)
    assert isinstance(instance.outcome, ContinueAsNew)
    [start], signals = ending(instance)
    assert start.started.parent == parent and signals == []  # no report yet
    second = WorkflowInstance(durable._definitions.workflow_definition(continuing),
                              start.started)
    second.activate([start.started], 1_000.0)
    [], [report] = ending(second)
    assert report.event == ChildCompleted(0, 0.0, 2, 7) and report.run_id == "p-run"


def test_starting_another_child_workflow_is_a_divergence_that_names_both() -> None:
    h = Harness(order, 30)
    h.activate()

    @durable.workflow(name="Refund")
    async def refund(ctx: durable.Context, amount: int) -> Receipt:
        return Receipt(-amount, "r-2")

    @durable.workflow(name="Order")
    async def changed(ctx: durable.Context, amount: int) -> str:
        return str(await (await ctx.start_child(refund, amount, id="charge-1")))

    instance = WorkflowInstance(durable._definitions.workflow_definition(changed), h.started)
    from durable._replay import replay

    _, failed = replay(instance, h.history)
    error = failed.error
    assert isinstance(error, durable.errors.NonDeterminismError)
    assert isinstance(error.recorded, ChildInitiated) and isinstance(error.command, StartChild)
    assert "'Charge'" in str(error) and "'Refund'" in str(error)
    assert "test_children.py" in error.location
