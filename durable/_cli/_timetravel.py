"""``durable show ID --at WHEN``: an execution as it was at one moment.

WHEN is a seq, an ISO 8601 date and time, a time of day on the day the execution started
(both UTC unless they name a zone, or ``--local``), or ``@EPOCH_SECONDS``; anything else is a
``UsageError`` that lists these forms.
"""

from __future__ import annotations

import argparse
import re
from datetime import datetime, time, timezone
from typing import Final

from .._history import Event
from ..errors import UsageError
from . import _render
from ._targets import connect, import_modules, iso_moment, local_times, times, wants_json

__all__ = ["AT_HELP", "moment", "show_at"]

AT_HELP: Final = ("the state as it was at WHEN: a seq (12), an ISO 8601 date and time "
                  "(2026-01-05T10:31:34Z; UTC without a zone, or local with --local), a time "
                  "of day on the day the execution started (10:31:34.688) or @EPOCH_SECONDS")

_SEQ: Final = re.compile(r"^\d+$")
_EPOCH: Final = re.compile(r"^@(\d+(?:\.\d*)?)$")
_TIME_OF_DAY: Final = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2})(\.\d{1,6})?)?$")


def moment(text: str, started_at: float, args: argparse.Namespace) -> datetime | float | int:
    """What ``--at`` names, as ``WorkflowHandle.state_at`` takes it."""
    text = text.strip()
    if _SEQ.match(text):
        return int(text)
    if epoch := _EPOCH.match(text):
        return float(epoch.group(1))
    try:
        if clock := _TIME_OF_DAY.match(text):
            zone = None if local_times(args) else timezone.utc
            day = datetime.fromtimestamp(started_at, zone).date()
            return datetime.combine(day, _time_of_day(*clock.groups()), zone).astimezone()
    except ValueError:
        pass
    when = iso_moment(text, local_times(args))
    if when is None:
        raise UsageError(f"--at {text!r} is not a moment: {AT_HELP}")
    return when


def _time_of_day(hour: str, minute: str, second: str | None, fraction: str | None) -> time:
    return time(int(hour), int(minute), int(second or 0), round(float(fraction or 0) * 1_000_000))


async def show_at(args: argparse.Namespace) -> int:
    """``durable show ID --at WHEN [--replay] [--json]``."""
    import_modules(args)  # registers the workflow's code, for --replay
    async with connect(args, redis=False, read_only=True) as client:
        handle = client.get_handle(args.id)
        when = moment(args.at, (await handle.describe()).created_at, args)
        state = await handle.state_at(when, replay=args.replay, run_id=args.run)
        as_json = wants_json(args)
        events: list[Event] = [] if as_json else await handle.history(run_id=state.run_id)
    print(_render.json(state) if as_json
          else "\n".join(_render.state_at(state, events, times(args))))
    return 0
