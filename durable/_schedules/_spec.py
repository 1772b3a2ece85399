"""When a schedule is due: a cron expression (with a time zone) or a fixed interval.

Cron expressions are parsed and iterated by ``croniter`` (a well-kept library made for the
job; it handles the ``@daily`` aliases, ranges and steps, and daylight-saving transitions
when it iterates in an aware time zone). Intervals are aligned to the epoch (plus
``offset``), so every process computes the same due times for a schedule, which is what
makes a run's workflow id, derived from its due time, the same everywhere.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .._stores._schedule_records import ScheduleSpec
from .._validate import show
from ..errors import InvalidScheduleError

__all__ = ["ScheduleSpec", "due_after", "make_spec", "next_dues"]

MIN_INTERVAL: Final = 1.0  # seconds: a run's workflow id carries its due time to the second
_SEARCH_YEARS: Final = 5  # croniter gives up on expressions that never match within this


def make_spec(schedule_id: str, *, cron: str | None, every: float | None, offset: float,
              tz: str, now: float) -> ScheduleSpec:
    """A validated spec; a bad one raises ``InvalidScheduleError`` naming the field."""
    if (cron is None) == (every is None):
        raise InvalidScheduleError(
            f"schedule {schedule_id!r} needs exactly one of cron=... or every=...",
            schedule_id=schedule_id, field="cron/every", value=None)
    _zone(schedule_id, tz)
    if every is not None:
        _check_interval(schedule_id, every, offset)
        return ScheduleSpec(every=float(every), offset=float(offset) % float(every), timezone=tz)
    assert cron is not None
    spec = ScheduleSpec(cron=_check_cron(schedule_id, cron), timezone=tz)
    if due_after(spec, now) is None:
        raise InvalidScheduleError(
            f"cron expression {cron!r} of schedule {schedule_id!r} never matches a date in the "
            f"next {_SEARCH_YEARS} years (e.g. February 31st): fix the day or month fields",
            schedule_id=schedule_id, field="cron", value=cron)
    return spec


def due_after(spec: ScheduleSpec, after: float) -> float | None:
    """The first due time strictly after ``after`` (epoch seconds); None if there is none."""
    if spec.every is not None:
        k = math.floor((after - spec.offset) / spec.every) + 1
        return spec.offset + k * spec.every
    assert spec.cron is not None
    from croniter import CroniterBadDateError, croniter  # on first use: 25 ms of imports

    start = datetime.fromtimestamp(after, ZoneInfo(spec.timezone))
    try:
        cron = croniter(spec.cron, start, max_years_between_matches=_SEARCH_YEARS)
        due: float = cron.get_next(float)  # pyright: ignore[reportUnknownMemberType]
    except CroniterBadDateError:
        return None
    return due


def next_dues(spec: ScheduleSpec, after: float, count: int) -> list[float]:
    """The next ``count`` due times after ``after``."""
    dues: list[float] = []
    t = after
    while len(dues) < count:
        due = due_after(spec, t)
        if due is None:
            break
        dues.append(due)
        t = due
    return dues


def _zone(schedule_id: str, tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    # OSError: a name too long for a file name, or naming a folder of the zone database
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError) as exc:
        raise InvalidScheduleError(
            f"unknown time zone {show(tz)} for schedule {schedule_id!r}: use an IANA name such "
            "as 'UTC' or 'Europe/Paris'", schedule_id=schedule_id, field="timezone",
            value=show(tz)) from exc


def _check_interval(schedule_id: str, every: float, offset: float) -> None:
    for name, value in (("every", every), ("offset", offset)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InvalidScheduleError(
                f"{name}={value!r} of schedule {schedule_id!r} is not a duration: use seconds "
                "or a timedelta", schedule_id=schedule_id, field=name, value=repr(value))
    if every < MIN_INTERVAL:
        raise InvalidScheduleError(
            f"every={every!r}s of schedule {schedule_id!r} is too short: schedules run at most "
            f"once every {MIN_INTERVAL:g}s", schedule_id=schedule_id, field="every", value=every)


def _check_cron(schedule_id: str, cron: str) -> str:
    text = " ".join(cron.split()) if isinstance(cron, str) else cron
    if not isinstance(text, str) or not text:
        raise InvalidScheduleError(
            f"cron={show(cron)} of schedule {schedule_id!r} is not a cron expression",
            schedule_id=schedule_id, field="cron", value=show(cron))
    from croniter import CroniterError, croniter

    try:
        croniter(text, datetime.fromtimestamp(0, timezone.utc))
    except (CroniterError, ValueError, KeyError, IndexError, OverflowError) as exc:
        raise InvalidScheduleError(
            f"bad cron expression {show(cron)} for schedule {schedule_id!r} ({exc}): use five "
            "fields 'minute hour day-of-month month day-of-week' (a sixth, seconds, goes last), or "
            "@hourly / @daily / @weekly / @monthly / @yearly", schedule_id=schedule_id,
            field="cron", value=cron) from exc
    return text
