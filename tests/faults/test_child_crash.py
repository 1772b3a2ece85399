"""Child workflows across SIGKILLed worker processes on one SQLite file.

Workers are killed (a) right after the parent's commit that created the child, before any
step of the child; (b) while the child's slow action runs; (c) right after the child's final
commit appended its outcome to the parent, before the parent ran it. A new worker finishes
both with the result of an uninterrupted run; the histories keep their invariants, every
outcome is recorded once, and every action call ran to its end.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

import durable
from durable._history import (
    ActionCompleted, ChildCompleted, ChildInitiated, ChildStarted, Event, WorkflowStarted,
)

from . import _flows
from ._checks import check_effects, check_history
from ._procs import Rig, WorkerProc

pytestmark = pytest.mark.faults

LABEL = "kid"


def _worker(rig: Rig, name: str, *workflows: str) -> WorkerProc:
    extra = ["--workflows", ",".join(workflows)] if workflows else []
    return rig.procs.start(name, extra=extra)


async def _finish(rig: Rig, parent: durable.WorkflowHandle[Any]) -> dict[str, list[Event]]:
    """Run the rest on a fresh worker; check the result, both histories and the effects."""
    rig.open_gate()
    _worker(rig, "finisher")
    assert await rig.result(parent) == _flows.fault_parent_result(LABEL)
    histories = {wf: await rig.client.get_handle(wf).history() for wf in ("p", "p-child")}
    for events in histories.values():
        check_history(events)
        completed = Counter(e.cmd for e in events if isinstance(e, ActionCompleted))
        assert set(completed.values()) == {1}, completed
    parent_events, child_events = histories["p"], histories["p-child"]
    assert len([e for e in parent_events if isinstance(e, ChildInitiated)]) == 1
    assert len([e for e in parent_events if isinstance(e, ChildCompleted)]) == 1
    started = child_events[0]
    assert isinstance(started, WorkflowStarted) and started.parent is not None
    assert (started.parent.workflow_id, started.parent.run_id) == ("p", parent_events[0].run_id)
    check_effects(rig.effects(), histories)
    return histories


async def _child_has(rig: Rig, kind: type) -> bool:
    if await rig.client.store.get_execution(rig.client.tenant, "p-child") is None:
        return False
    return any(isinstance(e, kind) for e in await rig.client.get_handle("p-child").history())


async def test_kill_after_the_parent_started_the_child(rig: Rig) -> None:
    parent = await rig.client.start(_flows.fault_parent, LABEL, id="p")
    only_parents = _worker(rig, "parents-only", "FaultParent")  # never runs the child

    async def child_created() -> bool:
        events = await parent.history()
        return any(isinstance(e, ChildStarted) for e in events)

    await rig.eventually(child_created, what="the parent's commit that created the child")
    rig.kill(only_parents)
    child = await rig.client.get_handle("p-child").history()
    assert [type(e) for e in child] == [WorkflowStarted]  # no step of the child ran
    await _finish(rig, parent)


async def test_kill_while_the_child_runs_its_action(rig: Rig) -> None:
    parent = await rig.client.start(_flows.fault_parent, LABEL, id="p")
    a = _worker(rig, "A")

    def gate_started() -> bool:
        return any(line["action"] == "gate" for line in rig.effects())

    await rig.eventually(gate_started, what="the child's slow action to start")
    rig.kill(a)
    histories = await _finish(rig, parent)
    gate = [line for line in rig.effects() if line["action"] == "gate"]
    assert [line["phase"] for line in gate][:1] == ["start"] and gate[-1]["phase"] == "end"
    assert {line["key"] for line in gate} == {gate[0]["key"]}  # one call, retried
    assert len(histories["p-child"]) > 1


async def test_kill_after_the_child_reported_to_the_parent(rig: Rig) -> None:
    rig.open_gate()
    parent = await rig.client.start(_flows.fault_parent, LABEL, id="p")
    only_parents = _worker(rig, "parents-only", "FaultParent")
    await rig.eventually(lambda: _child_has(rig, WorkflowStarted), what="the child to exist")
    rig.kill(only_parents)
    only_children = _worker(rig, "children-only", "FaultChild")

    async def reported() -> bool:
        return any(isinstance(e, ChildCompleted) for e in await parent.history())

    await rig.eventually(reported, what="the child's end in the parent's history")
    rig.kill(only_children)
    events = await parent.history()
    assert isinstance(events[-1], ChildCompleted)  # appended by the child's final commit
    assert (await parent.describe()).status == "running"  # and not run by the parent yet
    await _finish(rig, parent)
