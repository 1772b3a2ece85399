"""``durable show ID --at WHEN``: an execution as it was at one moment."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, time

import msgspec

from ._history import Event
from ._timetravel import StateAt

__all__ = ["AT_HELP", "as_json", "moment", "render"]

AT_HELP = ("the state as it was at WHEN: a seq (12), a local time (2026-01-05T10:31:34, or "
           "10:31:34.688 on the day the execution started) or @EPOCH_SECONDS")

_SEQ = re.compile(r"^\d+$")
_EPOCH = re.compile(r"^@(\d+(?:\.\d*)?)$")
_TIME_OF_DAY = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2})(\.\d{1,6})?)?$")


def moment(text: str, started_at: float) -> datetime | float | int:
    """What ``--at`` names, as ``WorkflowHandle.state_at`` takes it; ValueError if nothing."""
    text = text.strip()
    if _SEQ.match(text):
        return int(text)
    epoch = _EPOCH.match(text)
    if epoch:
        return float(epoch.group(1))
    clock = _TIME_OF_DAY.match(text)
    try:
        if clock:
            hour, minute, second, fraction = clock.groups()
            at = time(int(hour), int(minute), int(second or 0),
                      round(float(fraction or 0) * 1_000_000))
            return datetime.combine(date.fromtimestamp(started_at), at)
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--at {text!r} is not a moment: {AT_HELP}") from None


def render(state: StateAt, events: list[Event], timeline: Callable[[list[Event]], list[str]],
           clock: Callable[[float], str], value: Callable[..., str]) -> list[str]:
    """The timeline up to the moment, then the execution as it was then."""
    lines = timeline([e for e in events if e.seq <= state.seq])
    later = len(events) - state.seq
    if later:
        lines.append(f"      ({later} later event{'s' if later != 1 else ''} not shown)")
    how = "replayed with today's code" if state.replayed else "as recorded"
    lines += ["", f"as of seq {state.seq} ({clock(state.time)}), {how}:",
              f"status:    {state.status}", f"state:     {state.state or '-'}",
              f"data:      {value(state.data) if state.data else '-'}"]
    if state.suspended_at is not None:
        lines.append(f"waiting:   {state.suspended_at}")
    if state.status == "completed":
        lines.append(f"result:    {value(state.result, 400)}")
    if state.error is not None:
        lines.append(f"error:     {state.error.type}: {state.error.message}")
    for event in state.pending:
        lines.append(f"received, not run yet: seq {event.seq} {type(event).__name__}")
    return lines


def as_json(state: StateAt) -> str:
    """``--at`` with ``--json``: the state as one JSON object."""
    return msgspec.json.encode(state).decode()
