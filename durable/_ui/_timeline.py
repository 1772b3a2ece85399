"""A run's history as a timeline: bars for what took time, marks for what happened at once.

Bars: each action call from ``ActionScheduled`` to its outcome (with its attempt and error),
each timer from ``TimerStarted`` to ``TimerFired`` or ``TimerCancelled``, each child from
``ChildInitiated`` to its outcome (a link to it), each update from ``UpdateAccepted`` to
``UpdateCompleted``, and each wait of the coroutine: from the end of a workflow task (the
``file:line`` it was suspended at) to the input that woke it (an event received, a timer, an
action's outcome ...). What has not ended yet runs to ``now``; pending action tasks add their
attempt and last error. Marks: events received, state changes, the start and the end.

Pure: events in, a ``Timeline`` out; the template draws it (positions in percent).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from .._cli._render import call, value
from .._history import (
    ActionCompleted, ActionFailed, ActionScheduled, CancelRequested, ChildCancelled,
    ChildCompleted, ChildFailed, ChildInitiated, ChildStarted, ChildStartFailed, EventReceived,
    Event, StateChanged, TaskCompleted, TimerCancelled, TimerFired, TimerStarted, UpdateAccepted,
    UpdateCompleted, WorkflowCancelled, WorkflowCompleted, WorkflowContinuedAsNew, WorkflowFailed,
    WorkflowStarted,
)
from .._stores._records import ActionTask

__all__ = ["Bar", "Mark", "Timeline", "build", "woke_by"]


class Bar(NamedTuple):
    """Something that took time: ``end`` None while it goes on."""

    key: str  # "action 3", "timer 4", "wait 7" ...: one lane each
    kind: str  # action | timer | child | update | wait
    label: str
    start: float
    end: float | None
    outcome: str  # ok | failed | cancelled | fired | open | ...
    detail: str = ""  # the error, the attempt, what ended a wait
    link: str | None = None  # a child's workflow id


class Mark(NamedTuple):
    """Something that happened at one moment."""

    seq: int
    time: float
    kind: str  # received | state | cancel | start | end
    label: str


class Timeline(NamedTuple):
    """Bars and marks of one run between ``start`` and ``end`` (the last event, or now)."""

    start: float
    end: float
    bars: list[Bar]
    marks: list[Mark]

    def left(self, t: float) -> float:
        """Where ``t`` is, in percent of the width."""
        span = self.end - self.start
        return 0.0 if span <= 0 else round(100.0 * (t - self.start) / span, 3)

    def width(self, bar: Bar) -> float:
        """How wide ``bar`` is, in percent (at least a sliver, so that it shows)."""
        end = self.end if bar.end is None else bar.end
        return max(0.4, round(self.left(end) - self.left(bar.start), 3))


def woke_by(event: Event, names: dict[int, str]) -> str | None:
    """What an input that ends a wait is, in words; None for events that are not inputs."""
    match event:
        case EventReceived(name=name):
            return f"event {name}"
        case TimerFired(cmd=cmd):
            return f"timer #{cmd} fired"
        case ActionCompleted(cmd=cmd) | ActionFailed(cmd=cmd):
            verb = "completed" if isinstance(event, ActionCompleted) else "failed"
            return f"action #{cmd} {names.get(cmd, '')} {verb}".replace("  ", " ")
        case ChildStarted(cmd=cmd) | ChildCompleted(cmd=cmd) | ChildFailed(cmd=cmd) | \
                ChildCancelled(cmd=cmd) | ChildStartFailed(cmd=cmd):
            return f"child #{cmd} {type(event).__name__.removeprefix('Child').lower()}"
        case CancelRequested():
            return "cancel requested"
        case UpdateAccepted(name=name):
            return f"update {name}"
        case _:
            return None


class _Builder:
    def __init__(self, now: float) -> None:
        self.now = now
        self.open: dict[str, Bar] = {}
        self.bars: list[Bar] = []
        self.marks: list[Mark] = []
        self.names: dict[int, str] = {}
        self.waiting: tuple[float, str] | None = None  # since when, at which line

    def begin(self, key: str, kind: str, label: str, t: float, detail: str = "",
              link: str | None = None) -> None:
        self.open[key] = Bar(key, kind, label, t, None, "open", detail, link)

    def finish(self, key: str, t: float, outcome: str, detail: str = "") -> None:
        bar = self.open.pop(key, None)
        if bar is not None:
            self.bars.append(bar._replace(end=t, outcome=outcome, detail=detail or bar.detail))

    def add(self, e: Event) -> None:
        self._wake(e)
        match e:
            case ActionScheduled(cmd=cmd, name=name, args=args, kwargs=kwargs):
                self.names[cmd] = name
                self.begin(f"action {cmd}", "action", f"#{cmd} {call(name, args, kwargs)}", e.time)
            case ActionCompleted(cmd=cmd, attempt=attempt, result=result):
                self.finish(f"action {cmd}", e.time, "ok",
                            f"attempt {attempt}: {value(result, 80)}")
            case ActionFailed(cmd=cmd, attempt=attempt, error=error):
                self.finish(f"action {cmd}", e.time, "failed",
                            f"attempt {attempt}: {error.type}: {error.message}")
            case TimerStarted(cmd=cmd, duration=duration):
                self.begin(f"timer {cmd}", "timer", f"#{cmd} timer {duration:g}s", e.time)
            case TimerFired(cmd=cmd):
                self.finish(f"timer {cmd}", e.time, "fired")
            case TimerCancelled(cmd=cmd):
                self.finish(f"timer {cmd}", e.time, "cancelled")
            case ChildInitiated(cmd=cmd, workflow=workflow, workflow_id=child):
                self.names[cmd] = workflow
                self.begin(f"child {cmd}", "child", f"#{cmd} child {workflow} {child}", e.time,
                           link=child)
            case ChildCompleted(cmd=cmd, result=result):
                self.finish(f"child {cmd}", e.time, "ok", value(result, 80))
            case ChildFailed(cmd=cmd, error=error):
                self.finish(f"child {cmd}", e.time, "failed", f"{error.type}: {error.message}")
            case ChildCancelled(cmd=cmd) | ChildStartFailed(cmd=cmd):
                self.finish(f"child {cmd}", e.time, "cancelled")
            case UpdateAccepted(id=uid, name=name, args=args):
                self.begin(f"update {uid}", "update", f"update {call(name, args, {})}", e.time)
            case UpdateCompleted(id=uid, result=result, error=error):
                self.finish(f"update {uid}", e.time, "failed" if error else "ok",
                            f"{error.type}: {error.message}" if error else value(result, 80))
            case _:
                self._mark(e)

    def _mark(self, e: Event) -> None:
        match e:
            case TaskCompleted(suspended_at=line):
                self.waiting = (e.time, line or "")
            case EventReceived(name=name, payload=payload):
                self.marks.append(Mark(e.seq, e.time, "received", f"{name} {value(payload, 60)}"))
            case StateChanged(state=state):
                self.marks.append(Mark(e.seq, e.time, "state", f"state {state}"))
            case CancelRequested(reason=reason):
                self.marks.append(Mark(e.seq, e.time, "cancel", f"cancel requested {reason}"))
            case WorkflowStarted(workflow=workflow, args=args, kwargs=kwargs):
                self.marks.append(Mark(e.seq, e.time, "start", call(workflow, args, kwargs)))
            case WorkflowCompleted() | WorkflowFailed() | WorkflowCancelled() | \
                    WorkflowContinuedAsNew():
                self.marks.append(Mark(e.seq, e.time, "end", _ended(e)))
            case _:
                pass

    def _wake(self, e: Event) -> None:
        """An input ends the coroutine's wait that began at the last task's end."""
        what = woke_by(e, self.names)
        if what is None or self.waiting is None:
            return
        since, line = self.waiting
        self.waiting = None
        self.bars.append(Bar(f"wait {e.seq}", "wait", f"waits at {line or '?'}", since, e.time,
                             "ok", f"ended by {what}"))


def _ended(e: Event) -> str:
    match e:
        case WorkflowCompleted(result=result):
            return f"completed {value(result, 60)}"
        case WorkflowFailed(error=error):
            return f"failed {error.type}: {error.message}"
        case WorkflowContinuedAsNew(run_id=run_id):
            return f"continued as new: run {run_id}"
        case _:
            return "cancelled"


def build(events: Sequence[Event], *, now: float, pending: Sequence[ActionTask] = (),
          ended: bool = False) -> Timeline:
    """The timeline of a run's ``events``; ``pending`` action tasks add their attempt and last
    error to their open bars; a run that has not ``ended`` runs to ``now``."""
    b = _Builder(now)
    for e in events:
        b.add(e)
    tasks = {f"action {t.cmd}": t for t in pending}
    for key, bar in b.open.items():
        task: Any = tasks.get(key)
        detail = "" if task is None else f"attempt {task.attempt}" + (
            f", last error: {task.last_error}" if task.last_error else "")
        b.bars.append(bar._replace(detail=detail or bar.detail))
    if b.waiting is not None and not ended:
        since, line = b.waiting
        b.bars.append(Bar("wait now", "wait", f"waits at {line or '?'}", since, None, "open",
                          "waiting"))
    start = events[0].time if events else now
    end = events[-1].time if ended and events else max(now, events[-1].time if events else now)
    b.bars.sort(key=lambda bar: (bar.start, bar.key))
    return Timeline(start, end, b.bars, b.marks)
