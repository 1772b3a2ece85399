"""``durable show ID --at WHEN``: an execution as it was at one moment.

WHEN is a seq, a local date and time, a time of day on the day the execution started, or
``@EPOCH_SECONDS``; anything else is a ``UsageError`` that lists these forms.
"""

from __future__ import annotations

import argparse
import re
from datetime import date, datetime, time
from typing import Final

from .._history import Event
from ..errors import UsageError
from . import _render
from ._targets import connect, import_modules

__all__ = ["AT_HELP", "moment", "show_at"]

AT_HELP: Final = ("the state as it was at WHEN: a seq (12), a local time (2026-01-05T10:31:34, "
                  "or 10:31:34.688 on the day the execution started) or @EPOCH_SECONDS")

_SEQ: Final = re.compile(r"^\d+$")
_EPOCH: Final = re.compile(r"^@(\d+(?:\.\d*)?)$")
_TIME_OF_DAY: Final = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2})(\.\d{1,6})?)?$")


def moment(text: str, started_at: float) -> datetime | float | int:
    """What ``--at`` names, as ``WorkflowHandle.state_at`` takes it."""
    text = text.strip()
    if _SEQ.match(text):
        return int(text)
    if epoch := _EPOCH.match(text):
        return float(epoch.group(1))
    try:
        if clock := _TIME_OF_DAY.match(text):
            return datetime.combine(date.fromtimestamp(started_at), _time_of_day(*clock.groups()))
        return datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--at {text!r} is not a moment: {AT_HELP}") from None


def _time_of_day(hour: str, minute: str, second: str | None, fraction: str | None) -> time:
    return time(int(hour), int(minute), int(second or 0), round(float(fraction or 0) * 1_000_000))


async def show_at(args: argparse.Namespace) -> int:
    """``durable show ID --at WHEN [--replay] [--json]``."""
    import_modules(args)  # registers the workflow's code, for --replay
    async with connect(args, redis=False, read_only=True) as client:
        handle = client.get_handle(args.id)
        when = moment(args.at, (await handle.describe()).created_at)
        state = await handle.state_at(when, replay=args.replay, run_id=args.run)
        events: list[Event] = [] if args.json else await handle.history(run_id=state.run_id)
    print(_render.json(state) if args.json else "\n".join(_render.state_at(state, events)))
    return 0
