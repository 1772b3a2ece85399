"""How the CLI shows things: tables, history timelines, status blocks, JSON.

Every function returns text (a line list or a string) and prints nothing: the commands print.
Moments are ISO 8601 with the date, in UTC unless ``--local`` (:class:`Times`), with how far
they are from now where that helps (``in 1d 23h``, ``3h 2m ago``); values are JSON, cut to a
readable length. ``--json`` output is built by :func:`json` and :func:`ndjson` from values
with named fields (``durable._named``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any, Final

import msgspec

import durable

from .._named import named
from .._history import (
    ActionCancelRequested, ActionCompleted, ActionFailed, ActionScheduled, CancelRequested,
    ChildCancelled, ChildCancelRequested, ChildCompleted, ChildFailed, ChildInitiated,
    ChildStarted, ChildStartFailed, DataChanged, Event, EventReceived, Patched, StateChanged,
    TaskCompleted, TimerCancelled, TimerFired, TimerStarted, UpdateAccepted, UpdateCompleted,
    WorkflowCancelled, WorkflowCompleted, WorkflowContinuedAsNew, WorkflowFailed, WorkflowStarted,
    WorkflowTerminated,
)
from .._patches import ExecutionRef, PatchReport
from .._timetravel import StateAt
from ._options import UNITS

__all__ = [
    "Progress", "Times", "call", "json", "ndjson", "patch_report", "relative", "schedule",
    "schedule_when", "span", "state_at", "summary", "table", "timeline", "value",
]


class Progress:
    """When a long command prints its progress line again: at most every ``every`` seconds."""

    def __init__(self, every: float) -> None:
        self.every = every
        self.began = self.last = time.monotonic()

    def rate(self, done: int) -> float | None:
        """``done`` per second so far if a line is due now (it is then the last one), else None."""
        now = time.monotonic()
        if now - self.last < self.every:
            return None
        self.last = now
        return done / max(now - self.began, 1e-9)

Names = dict[int, str]  # command number -> the action or child workflow it scheduled


# ---- values ---------------------------------------------------------------------------------


def json(obj: Any) -> str:
    """``obj`` as one line of JSON, every struct with named fields; a payload this command
    cannot decode (no ``--codec``) as the string ``"<encoded>"``."""
    return _json_encode(named(obj)).decode()


def ndjson(items: Sequence[Any]) -> list[str]:
    """A list for ``--json``: one JSON object per line (NDJSON)."""
    return [json(item) for item in items]


def _unencodable(obj: Any) -> Any:
    if type(obj) is msgspec.msgpack.Ext:
        return ENCODED
    raise TypeError(f"cannot show a {type(obj).__name__}")


ENCODED: Final = "<encoded>"
_json_encode: Final = msgspec.json.Encoder(enc_hook=_unencodable).encode


def value(obj: Any, limit: int = 120) -> str:
    """``obj`` as JSON, cut to ``limit`` characters."""
    text = json(obj)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def call(name: str, args: Sequence[Any], kwargs: dict[str, Any]) -> str:
    """``name(arg, key=arg)`` with each argument as short JSON."""
    parts = [value(a, 60) for a in args] + [f"{k}={value(v, 60)}" for k, v in kwargs.items()]
    return f"{name}({', '.join(parts)})"


class Times:
    """How a command shows moments: ISO 8601 with the date, in UTC (``Z``) or, ``local``,
    in this machine's time zone with its offset; and how far each is from ``now``."""

    def __init__(self, local: bool = False, now: float | None = None) -> None:
        self.local = local
        self.now = time.time() if now is None else now

    def at(self, ts: float, *, ms: bool = False) -> str:
        """Epoch seconds as ISO 8601 (``2026-01-05T10:31:34Z``; ``ms``: to the millisecond)."""
        return self.iso(datetime.fromtimestamp(ts, timezone.utc), ms=ms)

    def iso(self, moment: datetime, *, ms: bool = False) -> str:
        """An aware datetime as :meth:`at` shows it."""
        moment = moment.astimezone() if self.local else moment.astimezone(timezone.utc)
        text = moment.isoformat(timespec="milliseconds" if ms else "seconds")
        return text if self.local else text.replace("+00:00", "Z")

    def when(self, ts: float, *, ms: bool = False) -> str:
        """``2026-01-07T09:00:00Z (in 1d 23h)``: the moment and how far it is from now."""
        return f"{self.at(ts, ms=ms)} ({relative(ts - self.now)})"

    @property
    def zone(self) -> str:
        """What the times are in, for a header."""
        return "local time" if self.local else "UTC"


def span(seconds: float) -> str:
    """A length of time in its two largest units: ``1d 23h``, ``3h 2m``, ``45s``, ``0.2s``."""
    seconds = abs(seconds)
    if seconds < 60:
        return f"{seconds:.1f}s".replace(".0s", "s") if seconds < 10 else f"{seconds:.0f}s"
    parts: list[str] = []
    rest = int(seconds)
    for unit in ("d", "h", "m", "s"):
        count, rest = divmod(rest, UNITS[unit])
        if count or parts:
            parts.append(f"{count}{unit}")
    return " ".join(p for p in parts[:2] if not p.startswith("0"))


def relative(delta: float) -> str:
    """``in 1d 23h`` for a moment ``delta`` seconds ahead, ``3h 2m ago`` for one behind."""
    return f"in {span(delta)}" if delta > 0 else f"{span(delta)} ago"


def duration(seconds: float) -> str:
    """Seconds in the largest unit that divides them (``1d``, ``90m``, ``45s``)."""
    for unit in ("w", "d", "h", "m"):
        if seconds >= UNITS[unit] and seconds % UNITS[unit] == 0:
            return f"{seconds / UNITS[unit]:g}{unit}"
    return f"{seconds:g}s"


def table(header: list[str], rows: list[list[str]],
          tenants: Sequence[str] | None = None) -> list[str]:
    """``rows`` under ``header`` in left-aligned columns; ``tenants`` adds a first column."""
    if tenants is not None:
        header, rows = ["TENANT", *header], [[t, *row] for t, row in zip(tenants, rows)]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
            for row in [header, *rows]]


# ---- histories ------------------------------------------------------------------------------


def timeline(events: Sequence[Event], times: Times | None = None) -> list[str]:
    """One line per event: seq, time, type and its salient fields (``times``: UTC by default)."""
    times = times or Times()
    if not events:
        return []
    names: Names = {}
    lines = [f"history of {getattr(events[0], 'workflow_id', '?')} "
             f"(started {times.when(events[0].time)}; times are {times.zone})"]
    for event in events:
        if isinstance(event, ActionScheduled):
            names[event.cmd] = event.name
        elif isinstance(event, ChildInitiated):
            names[event.cmd] = event.workflow_id
        kind = type(event).__name__
        lines.append(f"{event.seq:>4}  {times.at(event.time, ms=True)}  {kind:<17} "
                     f"{_detail(event, names, times)}".rstrip())
    return lines


def _detail(event: Event, names: Names, times: Times) -> str:
    if isinstance(event, TimerStarted):
        return f"#{event.cmd} {span(event.duration)}, fires at {times.when(event.fire_at)}"
    for describe in (_run_detail, _child_detail, _action_detail, _input_detail):
        text = describe(event, names)
        if text is not None:
            return text
    return ""


def _run_detail(event: Event, names: Names) -> str | None:
    match event:
        case WorkflowStarted():
            after = ("" if event.continued_from is None
                     else f" continues run {event.continued_from}")
            if event.parent is not None:
                after += f" child of {event.parent.workflow_id} (#{event.parent.cmd})"
            return (f"{call(event.workflow, event.args, event.kwargs)} version={event.version} "
                    f"run={event.run_id}{after}")
        case WorkflowContinuedAsNew():
            return f"{call('next run', event.args, event.kwargs)} run={event.run_id}"
        case TaskCompleted():
            return "" if event.suspended_at is None else f"waits at {_short(event.suspended_at)}"
        case StateChanged():
            return event.state
        case DataChanged():
            return f"del {event.key}" if event.deleted else f"{event.key} = {value(event.value)}"
        case Patched():
            return event.patch_id
        case WorkflowCompleted():
            return value(event.result)
        case WorkflowFailed():
            return f"{event.error.type}: {event.error.message}"
        case WorkflowCancelled():
            return ""
        case WorkflowTerminated():
            return f"{event.reason} (next run {event.run_id})"
        case _:
            return None


def _child_detail(event: Event, names: Names) -> str | None:
    match event:
        case ChildInitiated():
            return (f"#{event.cmd} {call(event.workflow, event.args, event.kwargs)} "
                    f"id={event.workflow_id} parent_close={event.parent_close}")
        case ChildStarted() | ChildCancelled():
            return f"#{event.cmd} {names.get(event.cmd, '?')}"
        case ChildStartFailed():
            return f"#{event.cmd} {names.get(event.cmd, '?')}: the workflow id is taken"
        case ChildCompleted():
            return f"#{event.cmd} {names.get(event.cmd, '?')} -> {value(event.result)}"
        case ChildFailed():
            return (f"#{event.cmd} {names.get(event.cmd, '?')}: {event.error.type}: "
                    f"{event.error.message}")
        case ChildCancelRequested():
            return f"#{event.cmd} {event.workflow_id} {event.reason}".rstrip()
        case _:
            return None


def _action_detail(event: Event, names: Names) -> str | None:
    match event:
        case ActionScheduled():
            return f"#{event.cmd} {call(event.name, event.args, event.kwargs)}"
        case ActionCompleted():
            return (f"#{event.cmd} {names.get(event.cmd, '?')} -> {value(event.result)}"
                    f" (attempt {event.attempt})")
        case ActionFailed():
            return (f"#{event.cmd} {names.get(event.cmd, '?')} failed on attempt {event.attempt}: "
                    f"{event.error.type}: {event.error.message}")
        case ActionCancelRequested():
            return f"#{event.cmd} {names.get(event.cmd, '?')}"
        case TimerFired() | TimerCancelled():
            return f"#{event.cmd}"
        case _:
            return None


def _input_detail(event: Event, names: Names) -> str | None:
    match event:
        case EventReceived():
            key = "" if event.key is None else f" key={event.key}"
            meta = "" if not event.metadata else f" metadata={value(event.metadata)}"
            return f"{event.name} {value(event.payload)}{key}{meta}"
        case CancelRequested():
            return event.reason
        case UpdateAccepted():
            return f"{call(event.name, event.args, {})} id={event.id}"
        case UpdateCompleted():
            if event.error is not None:
                return f"{event.name} failed: {event.error.type}: {event.error.message}"
            return f"{event.name} -> {value(event.result)}"
        case _:
            return None


def _short(location: str) -> str:
    """``file.py:line`` of a ``/path/to/file.py:line`` location."""
    return os.path.basename(location)


# ---- executions -----------------------------------------------------------------------------


def summary(d: durable.Description, times: Times | None = None) -> list[str]:
    """The status block under the timeline: status, state, data, pending work, errors."""
    times = times or Times()
    lines = [f"workflow:  {d.workflow} v{d.version}  id={d.workflow_id}  tenant={d.tenant}",
             f"started:   {times.when(d.created_at)}",
             f"updated:   {times.when(d.updated_at)}",
             *_status(d.status, d.state, d.data, d.suspended_at, d.result, d.error)]
    if d.status == "running" and (d.priority or d.fairness_key is not None):
        key = "" if d.fairness_key is None else f"  fairness key={d.fairness_key}"
        lines.append(f"priority:  {d.priority}{key}")
    for a in d.pending_actions:
        due = (f", next attempt at {times.when(a.visible_at)}" if a.visible_at > times.now
               else "")
        last = f", last error: {a.last_error}" if a.last_error else ""
        lines.append(f"pending action #{a.cmd} {call(a.name, a.args, a.kwargs)}: "
                     f"attempt {a.attempt}{due}{last}")
    for t in d.pending_timers:
        lines.append(f"pending timer #{t.cmd}: fires at {times.when(t.fire_at)}")
    lines.extend(f"waiting: {reason}" for reason in d.waiting)
    if d.task_error:
        lines.append("task error (the execution is held until this is fixed):")
        lines.extend(f"  {line}" for line in d.task_error.splitlines())
    return lines


def _status(status: str, state: str | None, data: dict[str, Any], suspended_at: str | None,
            result: Any, error: Any) -> list[str]:
    """Status, state, data, where it waits, its result or error: now or at a past moment."""
    lines = [f"status:    {status}", f"state:     {state or '-'}",
             f"data:      {value(data) if data else '-'}"]
    if suspended_at is not None:
        lines.append(f"waiting:   {suspended_at}")
    if status == "completed":
        lines.append(f"result:    {value(result, 400)}")
    if error is not None:
        lines.append(f"error:     {error.type}: {error.message}")
    return lines


def state_at(state: StateAt, events: Sequence[Event], times: Times | None = None) -> list[str]:
    """``show --at``: the timeline up to the moment, then the execution as it was then."""
    times = times or Times()
    lines = timeline([e for e in events if e.seq <= state.seq], times)
    later = len(events) - state.seq
    if later:
        lines.append(f"      ({later} later event{'s' if later != 1 else ''} not shown)")
    how = "replayed with today's code" if state.replayed else "as recorded"
    lines += ["", f"as of seq {state.seq}, {times.when(state.time, ms=True)}, {how}:",
              *_status(state.status, state.state, state.data, state.suspended_at, state.result,
                       state.error)]
    lines += [f"received, not run yet: seq {event.seq} {type(event).__name__}"
              for event in state.pending]
    return lines


# ---- patches --------------------------------------------------------------------------------


def patch_report(report: PatchReport, all_tenants: bool) -> list[str]:
    """``durable patches``: per patch id, the open executions still on its old path."""
    def name(e: ExecutionRef) -> str:
        where = f"{e.tenant}/" if all_tenants else ""
        return f"{where}{e.workflow_id} ({e.workflow} v{e.version})"

    lines = [f"checked {report.checked} open execution(s) against today's code"]
    if not report.patches:
        lines.append("no ctx.patched() ids in the code or in the open executions")
    rows = [[use.patch_id, str(len(use.old_path)), str(use.new_path),
             ", ".join(map(name, use.old_path)) or "none: safe to remove the old branch"]
            for use in report.patches]
    if rows:
        lines += table(["PATCH", "OLD PATH", "NEW PATH", "EXECUTIONS ON THE OLD PATH"], rows)
    if report.unchecked:
        lines.append(f"could not check {len(report.unchecked)} execution(s):")
        lines += [f"  {name(u.execution)}: {' '.join(u.reason.split())}" for u in report.unchecked]
    return lines


# ---- schedules ------------------------------------------------------------------------------


def schedule_when(d: durable.ScheduleDescription) -> str:
    """``cron '0 3 * * *' Europe/Paris`` or ``every 5m``."""
    if d.cron is not None:
        return f"cron {d.cron!r} {d.timezone}"
    assert d.every is not None
    return f"every {duration(d.every)}"


def schedule(d: durable.ScheduleDescription, times: Times | None = None) -> list[str]:
    """``durable schedule show``: definition, counts, next and recent runs."""
    times = times or Times()
    status = "paused" if d.paused else "active"
    lines = [f"schedule:  {d.schedule_id}  tenant={d.tenant}",
             f"workflow:  {call(d.workflow, d.args, d.kwargs)}",
             f"when:      {schedule_when(d)}",
             f"overlap:   {d.overlap.value}  catch-up window: {duration(d.catchup_window)}",
             f"status:    {status}{f'  ({d.note})' if d.note else ''}",
             f"runs:      {d.runs} started, {d.skipped} skipped (overlap), "
             f"{d.missed} missed (catch-up window), {d.buffered} buffered",
             f"running:   {', '.join(d.running) or '-'}",
             "next runs:" if d.next_runs else "next runs: -"]
    lines += [f"  {times.when(t.timestamp())}" for t in d.next_runs]
    lines.append("recent runs:" if d.recent_runs else "recent runs: -")
    lines += [f"  {times.when(r.due)}  {r.workflow_id}"
              f"{'  (manual)' if r.manual else ''}" for r in reversed(d.recent_runs)]
    return lines
