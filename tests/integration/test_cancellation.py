"""Cancellation end to end, on every store and with Redis dispatch.

``handle.cancel()`` raises ``CancelledError`` at the workflow's current await; cleanup may run
actions; the actions it no longer waits for are told through their heartbeat; timers are
cancelled and recorded; ``asyncio.timeout`` runs on durable time.
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from typing import Any

import pytest

import durable
from _support import eventually
from faults._checks import check_history
from durable._history import (
    ActionCancelRequested, ActionCompleted, ActionScheduled, CancelRequested, Event,
    TimerCancelled, TimerFired, TimerStarted, WorkflowCancelled, WorkflowCompleted,
)
from durable.errors import WorkflowCancelledError, WorkflowClosedError

from ._env import Env, env, env_spec  # noqa: F401 - fixtures

pytestmark = pytest.mark.integration

# what the actions saw, by workflow id
seen: dict[str, list[Any]] = defaultdict(list)


def _note(*what: Any) -> None:
    seen[durable.action_info().workflow_id].append(what)


@durable.action(name="engine_cancel_charge")
async def charge(amount: int) -> str:
    _note("charging", amount)
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        _note("charge cancelled", durable.action_info().cancelled)
        raise
    return "charged"


@durable.action(name="engine_cancel_refund")
async def refund(amount: int) -> str:
    _note("refund", amount)
    return f"refunded {amount}"


@durable.action(name="engine_cancel_export")
def export() -> str:
    """A plain function: it cannot be interrupted, so it watches for the cancellation."""
    info = durable.action_info()
    _note("exporting")
    stopped = info.cancellation.wait(60)
    _note("export told", stopped, info.cancelled)
    return "stopped early" if stopped else "exported"


@durable.workflow(name="EngineCancelCharge")
async def charge_flow(ctx: durable.Context, amount: int) -> str:
    try:
        return await ctx.run(charge, amount)
    except asyncio.CancelledError:
        ctx.set_state("refunding")
        await ctx.run(refund, amount)  # cleanup may run actions
        raise


@durable.workflow(name="EngineCancelExport")
async def export_flow(ctx: durable.Context) -> str:
    try:
        return await ctx.run(export)
    except asyncio.CancelledError:
        return "cancelled, and finished anyway"  # catching it: the workflow completes


@durable.workflow(name="EngineCancelNap")
async def nap_flow(ctx: durable.Context) -> None:
    await ctx.sleep(3600)


@durable.workflow(name="EngineCancelTimeout")
async def timeout_flow(ctx: durable.Context, seconds: float) -> str:
    try:
        async with asyncio.timeout(seconds):
            return await ctx.run(charge, 1)
    except TimeoutError:
        return "timed out"


WORKFLOWS = [charge_flow, export_flow, nap_flow, timeout_flow]
ACTIONS = [charge, refund, export]


def of(events: list[Event], *types: type) -> list[Any]:
    return [e for e in events if isinstance(e, types)]


async def started(handle: durable.WorkflowHandle[Any], what: str) -> None:
    await eventually(lambda: any(w[0] == what for w in seen[handle.workflow_id]),
                     what=f"{handle.workflow_id}: {what}")


async def test_cancel_while_an_action_runs_cleans_up_and_tells_the_action(env: Env) -> None:
    client = await env.start(WORKFLOWS, ACTIONS)
    handle = await client.start(charge_flow, 7, id="charge")
    await started(handle, "charging")
    await handle.cancel("customer left")
    with pytest.raises(WorkflowCancelledError):
        await handle.result(timeout=20)
    await eventually(lambda: ("charge cancelled", True) in seen["charge"],
                     what="the running charge to be cancelled")
    assert seen["charge"].count(("refund", 7)) == 1
    events = await handle.history()
    [scheduled, refund_scheduled] = of(events, ActionScheduled)
    assert of(events, CancelRequested)[0].reason == "customer left"
    assert [e.cmd for e in of(events, ActionCancelRequested)] == [scheduled.cmd]
    assert [e.cmd for e in of(events, ActionCompleted)] == [refund_scheduled.cmd]
    assert isinstance(events[-1], WorkflowCancelled)
    check_history(events)
    description = await handle.describe()
    assert (description.status, description.state) == ("cancelled", "refunding")
    assert (description.pending_actions, description.pending_timers) == ([], [])


async def test_a_plain_function_action_sees_the_cancellation(env: Env) -> None:
    client = await env.start(WORKFLOWS, ACTIONS)
    handle = await client.start(export_flow, id="export")
    await started(handle, "exporting")
    await handle.cancel()
    assert await handle.result(timeout=20) == "cancelled, and finished anyway"
    await eventually(lambda: ("export told", True, True) in seen["export"],
                     what="the export to see the cancellation")
    events = await handle.history()
    assert len(of(events, ActionCancelRequested)) == 1
    assert isinstance(events[-1], WorkflowCompleted)
    assert (await handle.describe()).status == "completed"


async def test_cancelling_a_sleeping_workflow_cancels_and_records_its_timer(env: Env) -> None:
    client = await env.start(WORKFLOWS, ACTIONS)
    handle = await client.start(nap_flow, id="nap")
    await eventually(lambda: _has_timer(handle), what="the timer to be started")
    await handle.cancel()
    with pytest.raises(WorkflowCancelledError):
        await handle.result(timeout=20)
    events = await handle.history()
    [timer] = of(events, TimerStarted)
    assert [e.cmd for e in of(events, TimerCancelled)] == [timer.cmd]
    assert of(events, TimerFired) == []
    assert (await handle.describe()).pending_timers == []
    await handle.cancel()  # again: harmless
    assert len(of(await handle.history(), CancelRequested)) == 1


async def _has_timer(handle: durable.WorkflowHandle[Any]) -> bool:
    return bool((await handle.describe()).pending_timers)


async def test_asyncio_timeout_runs_on_durable_time_and_cancels_the_action(env: Env) -> None:
    client = await env.start(WORKFLOWS, ACTIONS)
    handle = await client.start(timeout_flow, 0.3, id="timeout")
    assert await handle.result(timeout=20) == "timed out"
    await eventually(lambda: ("charge cancelled", True) in seen["timeout"],
                     what="the charge to be cancelled")
    events = await handle.history()
    [timer] = of(events, TimerStarted)
    assert timer.duration == pytest.approx(0.3)  # asyncio.timeout computes it from a deadline
    assert [e.cmd for e in of(events, TimerFired)] == [timer.cmd]
    [scheduled] = of(events, ActionScheduled)
    assert [e.cmd for e in of(events, ActionCancelRequested)] == [scheduled.cmd]
    fired = of(events, TimerFired)[0]
    assert fired.time >= events[0].time + 0.3
    check_history(events)


async def test_cancel_of_an_ended_execution_is_a_clear_error(env: Env) -> None:
    client = await env.start(WORKFLOWS, ACTIONS)
    handle = await client.start(timeout_flow, 0.01, id="quick")
    assert await handle.result(timeout=20) == "timed out"
    with pytest.raises(WorkflowClosedError, match="already ended"):
        await handle.cancel()


@pytest.fixture(autouse=True)
def _clear_seen() -> None:
    seen.clear()


def test_action_info_outside_an_action_has_no_cancellation() -> None:
    info = durable.ActionInfo("k", "a", 1, "wf", "run", "t")
    assert not info.cancelled
    assert isinstance(info.cancellation, threading.Event)
