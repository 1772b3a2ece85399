"""Crash and resume with real processes on one SQLite file.

A worker process is SIGKILLed (a) while an action runs, (b) while the workflow sleeps on a
timer, (c) while it waits for an event; a new worker process finishes the workflow with the
result of an uninterrupted run, every action result is recorded exactly once, and an action
interrupted mid-run runs again with the same idempotency key.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from durable._history import ActionCompleted, Event, EventReceived, TimerFired, TimerStarted

from . import _flows
from ._checks import check_effects, check_history, commands, runs
from ._flows import MIX, NAP
from ._procs import Reference, Rig

pytestmark = pytest.mark.faults


def _outcomes(events: list[Event], kind: type) -> Counter[int]:
    return Counter(e.cmd for e in events if isinstance(e, kind))  # type: ignore[union-attr]


def _assert_like_reference(result: object, events: list[Event], reference: Reference) -> None:
    assert result == reference.result == _flows.fault_mix_result(MIX)
    check_history(events)
    assert commands(events) == commands(reference.history)
    completed = _outcomes(events, ActionCompleted)
    assert set(completed.values()) == {1}, completed  # every result recorded exactly once


def test_uninterrupted_run(reference: Reference) -> None:
    assert reference.result == _flows.fault_mix_result(MIX)
    check_history(reference.history)
    by_call = check_effects(reference.effects, {"reference": reference.history})
    assert len(by_call) == 5
    assert all(len(lines) == 2 for lines in by_call.values()), by_call  # one start, one end


async def test_kill_while_action_runs(rig: Rig, reference: Reference) -> None:
    handle = await rig.client.start(_flows.fault_mix, MIX, NAP, id="a")
    await handle.send(_flows.GO, _flows.GO_PAYLOAD, idempotency_key="go-1")
    a = rig.start_worker("A")
    gate_call = ("a", "gate", (MIX,))

    def gate_started() -> bool:
        return any(line["action"] == "gate" for line in rig.effects())

    await rig.eventually(gate_started, what="the slow action to start on worker A")
    rig.kill(a)
    pending = (await handle.describe()).pending_actions
    assert [t.name for t in pending] == ["gate"]
    assert not any(isinstance(e, ActionCompleted) and e.cmd == pending[0].cmd
                   for e in await handle.history())
    rig.open_gate()
    b = rig.start_worker("B")
    result = await rig.result(handle)

    events = await handle.history()
    _assert_like_reference(result, events, reference)
    by_call = check_effects(rig.effects(), {"a": events})
    gate_lines = by_call[gate_call]
    starts, ends = runs(gate_lines)
    assert starts == [a.pid, b.pid] and ends == [b.pid], gate_lines
    assert gate_lines[0]["key"] == gate_lines[-1]["key"] == pending[0].idempotency_key
    assert gate_lines[-1]["attempt"] >= gate_lines[0]["attempt"]
    for call, lines in by_call.items():  # nothing but the interrupted call ran twice
        if call != gate_call:
            assert len(lines) == 2, (call, lines)


async def test_kill_while_sleeping(rig: Rig, reference: Reference) -> None:
    rig.open_gate()
    handle = await rig.client.start(_flows.fault_mix, MIX, NAP, id="b")
    await handle.send(_flows.GO, _flows.GO_PAYLOAD, idempotency_key="go-1")
    a = rig.start_worker("A")

    async def sleeping() -> bool:
        return bool((await handle.describe()).pending_timers)

    await rig.eventually(sleeping, what="the workflow to sleep on its timer")
    rig.kill(a)
    description = await handle.describe()
    assert description.status == "running" and description.state == "sleeping"
    assert len(description.pending_timers) == 1, "the timer fired before the worker was killed"
    assert not any(isinstance(e, TimerFired) for e in await handle.history())
    rig.start_worker("B")
    result = await rig.result(handle)

    events = await handle.history()
    _assert_like_reference(result, events, reference)
    started = next(e for e in events if isinstance(e, TimerStarted))
    fired = [e for e in events if isinstance(e, TimerFired)]
    assert [e.cmd for e in fired] == [started.cmd]
    assert fired[0].time >= started.fire_at  # it did not fire early
    by_call = check_effects(rig.effects(), {"b": events})
    assert all(len(lines) == 2 for lines in by_call.values()), by_call  # each ran once


async def test_kill_while_waiting_for_event(rig: Rig, reference: Reference) -> None:
    rig.open_gate()
    handle = await rig.client.start(_flows.fault_mix, MIX, NAP, id="c")
    a = rig.start_worker("A")

    async def waiting() -> bool:
        return (await handle.describe()).state == "waiting"

    await rig.eventually(waiting, what="the workflow to wait for its event")
    rig.kill(a)
    description = await handle.describe()
    assert description.status == "running"
    assert not description.pending_actions and not description.pending_timers
    for _ in range(2):  # deduplicated by its idempotency key
        await handle.send(_flows.GO, _flows.GO_PAYLOAD, idempotency_key="go-1")
    rig.start_worker("B")
    result = await rig.result(handle)

    events = await handle.history()
    _assert_like_reference(result, events, reference)
    assert len([e for e in events if isinstance(e, EventReceived)]) == 1
    by_call = check_effects(rig.effects(), {"c": events})
    assert all(len(lines) == 2 for lines in by_call.values()), by_call


async def test_two_workers_one_killed_midway(rig: Rig) -> None:
    count, seconds = 20, 0.1
    handles = [await rig.client.start(_flows.fault_batch, i, 0.3 if i % 3 == 0 else 0.0,
                                      seconds, id=f"batch-{i}") for i in range(count)]
    a = rig.start_worker("A", concurrency=3)
    b = rig.start_worker("B", concurrency=3)

    def both_busy_a_mid_action() -> bool:
        starts = Counter(line["pid"] for line in rig.effects() if line["phase"] == "start")
        return starts[a.pid] >= 6 and starts[b.pid] >= 3 and bool(_open_attempts(rig, a.pid))

    await rig.eventually(both_busy_a_mid_action, what="both workers to run actions")
    rig.kill(a)
    interrupted = _open_attempts(rig, a.pid)
    finished = await rig.client.list(status="completed")
    assert len(finished) < count, "every workflow finished before the kill"

    results = await asyncio.gather(*(rig.result(h, timeout=60.0) for h in handles))
    assert results == [_flows.fault_batch_result(i) for i in range(count)]
    histories = {h.workflow_id: await h.history() for h in handles}
    for events in histories.values():
        check_history(events)
        assert set(_outcomes(events, ActionCompleted).values()) == {1}
    by_call = check_effects(rig.effects(), histories)
    assert interrupted, "worker A was killed with no action in flight"
    for call in interrupted:  # each interrupted call ran again, on B, with the same key
        starts, ends = runs(by_call[call])
        assert starts[0] == a.pid and b.pid in starts and ends[-1] == b.pid, by_call[call]


def _open_attempts(rig: Rig, pid: int) -> set[tuple[str, str, tuple[object, ...]]]:
    """The calls that worker ``pid`` started and did not finish (as far as the log shows)."""
    open_calls: set[tuple[str, str, tuple[object, ...]]] = set()
    for line in rig.effects():
        if line["pid"] == pid:
            call = (line["workflow_id"], line["action"], tuple(line["args"]))
            (open_calls.add if line["phase"] == "start" else open_calls.discard)(call)
    return open_calls
