"""Invariants every history and every effects log must satisfy, however the workers died."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

from durable._history import (
    INPUT_TYPES, TERMINAL_TYPES, ActionCancelRequested, ActionCompleted, ActionFailed,
    ActionScheduled, ChildCancelled,
    ChildCompleted, ChildFailed, ChildInitiated, ChildStarted, ChildStartFailed, Event,
    EventReceived, TaskCompleted, TimerCancelled, TimerFired, TimerStarted, WorkflowStarted,
)

Call = tuple[str, str, tuple[Any, ...]]  # (workflow_id, action, args)


def check_history(events: Sequence[Event], *, settled: bool = True) -> None:
    """Assert the invariants of one history; ``settled``: every action and timer has an outcome.

    seq is dense from 1; WorkflowStarted first; exactly one terminal event, last; inputs and
    command events alternate in batches closed by TaskCompleted; each action call is
    completed at most once, each timer fires at most once and never after its cancellation;
    an event's idempotency key is recorded once.
    """
    problems = list(_history_problems(events, settled))
    assert not problems, "history breaks its invariants:\n  " + "\n  ".join(problems) + \
        "\nhistory:\n  " + "\n  ".join(map(repr, events))


def _history_problems(events: Sequence[Event], settled: bool) -> Iterator[str]:
    seqs = [e.seq for e in events]
    if seqs != list(range(1, len(events) + 1)):
        yield f"seq is not dense from 1: {seqs}"
    if not events or type(events[0]) is not WorkflowStarted:
        yield "the first event is not WorkflowStarted"
    if sum(isinstance(e, WorkflowStarted) for e in events) > 1:
        yield "more than one WorkflowStarted"
    terminals = [e for e in events if isinstance(e, TERMINAL_TYPES)]
    if len(terminals) != 1 or terminals[0] is not events[-1]:
        yield f"want exactly one terminal event, last; got {terminals}"
    yield from _batch_problems(events)
    yield from _action_problems(events, settled)
    yield from _timer_problems(events, settled)
    yield from _child_problems(events, settled)
    keys = [e.key for e in events if isinstance(e, EventReceived) and e.key is not None]
    if len(keys) != len(set(keys)):
        yield f"an external event was recorded twice for one idempotency key: {keys}"


def _batch_problems(events: Sequence[Event]) -> Iterator[str]:
    """A batch is inputs, then TaskCompleted, then the commands that activation issued."""
    for prev, event in zip(events, events[1:]):
        if isinstance(event, TaskCompleted) and not isinstance(prev, INPUT_TYPES):
            yield f"TaskCompleted seq {event.seq} closes a batch without inputs (after {prev})"
        if not isinstance(event, (TaskCompleted, *INPUT_TYPES)) and isinstance(prev, INPUT_TYPES):
            yield f"command event seq {event.seq} follows input {prev} with no TaskCompleted"


def _action_problems(events: Sequence[Event], settled: bool) -> Iterator[str]:
    scheduled: dict[int, ActionScheduled] = {}
    outcomes: dict[int, Event] = {}
    cancelled: set[int] = set()  # cancelled by the workflow: an outcome is optional
    last_cmd = -1
    for event in events:
        if isinstance(event, (ActionScheduled, TimerStarted)):
            if event.cmd <= last_cmd:
                yield f"command numbers do not increase at {event}"
            last_cmd = max(last_cmd, event.cmd)
        if isinstance(event, ActionScheduled):
            scheduled[event.cmd] = event
        elif isinstance(event, (ActionCompleted, ActionFailed)):
            if event.cmd not in scheduled:
                yield f"{event} completes an action that was not scheduled before it"
            elif event.cmd in outcomes:
                yield f"action cmd {event.cmd} recorded twice: {outcomes[event.cmd]} and {event}"
            outcomes[event.cmd] = event
        elif isinstance(event, ActionCancelRequested):
            if event.cmd not in scheduled:
                yield f"{event} cancels an action that was not scheduled before it"
            cancelled.add(event.cmd)
    if settled and set(scheduled) - set(outcomes) - cancelled:
        yield f"actions without an outcome: {sorted(set(scheduled) - set(outcomes) - cancelled)}"


def _timer_problems(events: Sequence[Event], settled: bool) -> Iterator[str]:
    started: set[int] = set()
    ended: dict[int, Event] = {}
    for event in events:
        if isinstance(event, TimerStarted):
            started.add(event.cmd)
        elif isinstance(event, (TimerFired, TimerCancelled)):
            if event.cmd not in started:
                yield f"{event} names a timer that was not started before it"
            elif event.cmd in ended:
                yield f"timer cmd {event.cmd} ended twice: {ended[event.cmd]} and {event}"
            ended[event.cmd] = event
    if settled and started - set(ended):
        yield f"timers neither fired nor cancelled: {sorted(started - set(ended))}"


def _child_problems(events: Sequence[Event], settled: bool) -> Iterator[str]:
    """A child's start is answered once, and its end is recorded at most once, after it."""
    initiated: set[int] = set()
    answered: dict[int, Event] = {}
    ended: dict[int, Event] = {}
    for event in events:
        if isinstance(event, ChildInitiated):
            initiated.add(event.cmd)
        elif isinstance(event, (ChildStarted, ChildStartFailed)):
            if event.cmd not in initiated or event.cmd in answered:
                yield f"{event} answers a child start that was not made, or twice"
            answered[event.cmd] = event
        elif isinstance(event, (ChildCompleted, ChildFailed, ChildCancelled)):
            if not isinstance(answered.get(event.cmd), ChildStarted) or event.cmd in ended:
                yield f"{event} ends a child that was not started, or twice"
            ended[event.cmd] = event
    if settled and initiated - set(answered):
        yield f"child starts without an answer: {sorted(initiated - set(answered))}"


def commands(events: Sequence[Event]) -> list[tuple[Any, ...]]:
    """The command events of a history without seq and clock: equal for equal code paths."""
    out: list[tuple[Any, ...]] = []
    for event in events:
        if isinstance(event, (TaskCompleted, *INPUT_TYPES)):
            continue
        fields = event.__struct_fields__[2:]
        out.append((type(event).__name__,
                    *(getattr(event, f) for f in fields if f != "fire_at")))
    return out


def calls(effects: Sequence[dict[str, Any]]) -> dict[Call, list[dict[str, Any]]]:
    """Effects lines grouped by the call they belong to, in log order."""
    grouped: dict[Call, list[dict[str, Any]]] = defaultdict(list)
    for line in effects:
        grouped[(line["workflow_id"], line["action"], tuple(line["args"]))].append(line)
    return dict(grouped)


def check_effects(effects: Sequence[dict[str, Any]], histories: dict[str, Sequence[Event]]
                  ) -> dict[Call, list[dict[str, Any]]]:
    """Assert that the effects log and the histories agree; return the effects by call.

    Every recorded action call ran to its end at least once; every effect belongs to a
    scheduled call; all attempts of one call share one idempotency key and different calls
    have different keys; an attempt ends only after it started, in the same process.
    """
    by_call = calls(effects)
    scheduled = {(wf, e.name, tuple(e.args)) for wf, events in histories.items()
                 for e in events if isinstance(e, ActionScheduled)}
    problems = [f"effect of a call that no history scheduled: {c}" for c in set(by_call) - scheduled]
    problems += [f"scheduled call never ran to its end: {c}" for c in scheduled
                 if not any(line["phase"] == "end" for line in by_call.get(c, []))]
    keys: dict[str, Call] = {}
    for call, lines in by_call.items():
        if len({line["key"] for line in lines}) != 1:
            problems.append(f"attempts of {call} have different idempotency keys: {lines}")
        for line in lines:
            if keys.setdefault(line["key"], call) != call:
                problems.append(f"{call} and {keys[line['key']]} share key {line['key']!r}")
        started: set[tuple[int, int]] = set()
        for line in lines:
            attempt = (line["pid"], line["attempt"])
            if line["phase"] == "start":
                started.add(attempt)
            elif attempt not in started:
                problems.append(f"{call}: an attempt ended that never started: {line}")
    assert not problems, "effects break their invariants:\n  " + "\n  ".join(problems)
    return by_call


def runs(lines: Sequence[dict[str, Any]]) -> tuple[list[int], list[int]]:
    """The pids of the attempts of one call that started, and of those that ended."""
    return ([line["pid"] for line in lines if line["phase"] == "start"],
            [line["pid"] for line in lines if line["phase"] == "end"])
