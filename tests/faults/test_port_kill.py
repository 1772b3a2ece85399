"""Issue 15's porting features across SIGKILLed worker processes on one SQLite file: a query,
an update and a signal sent before their handlers exist (item 2), a condition (item 3), events
and cancellations sent to other workflows (item 6) and an action completed from outside
(item 7). Each is delivered, recorded and acted on exactly once after the kill; every history
keeps its invariants."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from durable._history import (
    ActionCompleted, CancelRequested, EventReceived, ExternalCancelRequested, ExternalSignalled,
    TaskCompleted, TimerFired, TimerStarted, UpdateAccepted, WorkflowCancelled,
)
from durable.errors import ActionTokenError

from . import _port_flows
from ._checks import check_history
from ._procs import Rig, WorkerProc

pytestmark = pytest.mark.faults


def _worker(rig: Rig, name: str, *workflows: str) -> WorkerProc:
    return rig.procs.start(name, extra=["--workflows", ",".join(workflows)] if workflows else [])


def _started(rig: Rig, action: str) -> bool:
    return any(e["action"] == action and e["phase"] == "start" for e in rig.effects())


async def test_requests_sent_before_their_handlers_are_delivered_once_after_a_kill(
        rig: Rig) -> None:
    handle = await rig.client.start(_port_flows.port_handlers, "h", id="h")
    a = _worker(rig, "A")
    await rig.eventually(lambda: _started(rig, "gate"), what="the slow action to start")
    # No handler exists yet: the query and the update wait, the signal is kept.
    query = asyncio.create_task(handle.query("status", timeout=60))
    update = asyncio.create_task(handle.update("bump", 5, idempotency_key="bump-1", timeout=60))
    await handle.send("note", "first", idempotency_key="note-1")
    await asyncio.sleep(0.3)  # let worker A see the requests (it cannot answer them)
    assert not query.done() and not update.done()
    rig.kill(a)
    rig.open_gate()
    _worker(rig, "B")
    assert await update == 5
    status = await query
    assert status["opened"] == "h:gate"
    result = await rig.result(handle)
    assert result == {"opened": "h:gate", "notes": ["first"], "bumps": [5]}
    events = await handle.history()
    check_history(events)
    assert sum(isinstance(e, UpdateAccepted) for e in events) == 1
    assert sum(isinstance(e, EventReceived) for e in events) == 1
    assert await handle.update("bump", 5, idempotency_key="bump-1", timeout=10) == 5  # once


async def test_a_condition_waits_across_a_kill(rig: Rig) -> None:
    handle = await rig.client.start(_port_flows.port_condition, 3, id="c")
    a = _worker(rig, "A")
    for i in (1, 2):
        await handle.send("inc", 1, idempotency_key=f"inc-{i}")

    async def both_run() -> bool:
        events = await handle.history()
        last_input = max(e.seq for e in events if isinstance(e, EventReceived))
        return sum(isinstance(e, EventReceived) for e in events) == 2 and any(
            isinstance(e, TaskCompleted) and e.seq > last_input for e in events)

    await rig.eventually(both_run, what="both events to have run")
    rig.kill(a)
    await handle.send("inc", 1, idempotency_key="inc-3")
    await handle.send("inc", 1, idempotency_key="inc-2")  # a retried send: no second delivery
    _worker(rig, "B")
    assert await rig.result(handle) == 3
    events = await handle.history()
    check_history(events)
    assert sum(isinstance(e, EventReceived) for e in events) == 3
    assert sum(isinstance(e, TimerStarted) for e in events) == 1  # the condition's timeout
    assert not any(isinstance(e, TimerFired) for e in events)


async def test_messages_to_other_workflows_are_delivered_once_across_a_kill(rig: Rig) -> None:
    target = await rig.client.start(_port_flows.port_target, "t", id="x-target")
    idle = await rig.client.start(_port_flows.port_idle, "i", id="x-idle")
    sender = await rig.client.start(_port_flows.port_sender, "x", id="x")
    a = _worker(rig, "senders-only", "PortSender")
    await rig.eventually(lambda: _started(rig, "gate"), what="the sender's slow action")
    rig.kill(a)  # after the commit that sent, before the sender's next one
    rig.open_gate()
    _worker(rig, "finisher")
    assert await rig.result(sender) == "x:gate"
    assert await rig.result(target) == "t got x"
    assert (await idle.describe()).status == "cancelled"
    histories: dict[str, Any] = {h.workflow_id: await h.history() for h in (sender, target, idle)}
    for events in histories.values():
        check_history(events)
    kinds = {wf: Counter(type(e).__name__ for e in events) for wf, events in histories.items()}
    assert kinds["x"][ExternalSignalled.__name__] == kinds["x"][ExternalCancelRequested.__name__] == 1
    assert kinds["x-target"][EventReceived.__name__] == 1
    assert kinds["x-idle"][CancelRequested.__name__] == 1
    assert isinstance(histories["x-idle"][-1], WorkflowCancelled)


async def test_an_action_completed_after_its_worker_was_killed(rig: Rig) -> None:
    handle = await rig.client.start(_port_flows.port_handoff, "k", id="k")
    a = _worker(rig, "A")

    def token() -> str | None:
        lines = [e for e in rig.effects() if e["phase"] == "token"]
        return lines[0]["args"][1] if lines else None

    issued = await rig.eventually(token, what="the action to hand off its completion")

    async def handed_off() -> bool:  # the worker leased the attempt to the token's holder
        try:
            await rig.client.heartbeat_action(issued, {"seen": True})
        except ActionTokenError:
            return False
        return True

    await rig.eventually(handed_off, what="the attempt to be leased to the token")
    rig.kill(a)
    _worker(rig, "B")
    await rig.client.complete_action(issued, "approved")
    assert await rig.result(handle) == "approved+k:2"
    events = await handle.history()
    check_history(events)
    assert Counter(e.cmd for e in events if isinstance(e, ActionCompleted)) == {0: 1, 1: 1}
    assert [e["phase"] for e in rig.effects() if e["action"] == "handoff"] == ["start", "token"]
