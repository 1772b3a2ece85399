"""``VirtualClock``: time that stands still until a test moves it."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import final

from .._definitions import seconds
from .._validate import check_number, show
from ..errors import ArgumentTypeError, InvalidArgumentError

__all__ = ["VirtualClock", "epoch_seconds"]

MAX_EPOCH = 253402300799.0  # 9999-12-31T23:59:59Z: the last second a datetime can show


def epoch_seconds(when: float | datetime) -> float:
    """Seconds since the epoch of a timestamp or a datetime (naive datetimes are UTC)."""
    if isinstance(when, datetime):
        aware = when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)
        return aware.timestamp()
    if isinstance(when, bool) or not isinstance(when, (int, float)):
        raise ArgumentTypeError(f"a point in time is a datetime or epoch seconds, not "
                                f"{show(when)}")
    return check_number(when, "a point in time", minimum=-MAX_EPOCH, maximum=MAX_EPOCH)


@final
class VirtualClock:
    """A ``Clock`` for tests: it only moves when told to, and never backwards.

    Pass it as ``durable.Client(store, clock=...)``; ``durable.testing.Environment`` makes
    one and moves it for you. ``start`` is a datetime (naive means UTC) or epoch seconds,
    by default the real time when the clock is made.
    """

    __slots__ = ("_now",)

    def __init__(self, start: float | datetime | None = None) -> None:
        self._now = time.time() if start is None else epoch_seconds(start)

    def __call__(self) -> float:
        """The virtual time, in seconds since the epoch."""
        return self._now

    def __repr__(self) -> str:
        return f"VirtualClock({self.now().isoformat()})"

    def now(self) -> datetime:
        """The virtual time as an aware UTC datetime (what ``ctx.now()`` returns)."""
        return datetime.fromtimestamp(self._now, timezone.utc)

    def advance(self, duration: float | timedelta) -> None:
        """Move the clock forward by ``duration`` (seconds or a timedelta), at once.

        Nothing runs on the way; ``Environment.sleep`` is the version that fires every timer
        due in between, in order.
        """
        step = seconds(duration)
        if step < 0:
            raise InvalidArgumentError(f"a VirtualClock never goes back (advance by {step}s)")
        self._now += step

    def advance_to(self, when: float | datetime) -> None:
        """Move the clock forward to ``when`` (a datetime or epoch seconds)."""
        target = epoch_seconds(when)
        if target < self._now:
            raise InvalidArgumentError(
                f"a VirtualClock never goes back ({target} is before {self._now})")
        self._now = target
