"""Where durable reads the time: a ``Clock`` is any callable returning seconds since the epoch.

The client, the worker and the local dispatcher read the time only through their clock, and
every store method is given their ``now``. Timers alone are due on the store's own clock (the
database server's for PostgreSQL; see ``durable._stores._store_clock``), so that callers whose
clocks disagree never fire one early or late. ``time.time`` is the real clock;
``durable.testing.VirtualClock`` is one that stands still until a test moves it.
"""

from __future__ import annotations

import time
from typing import Final, Protocol

__all__ = ["Clock", "SYSTEM_CLOCK"]


class Clock(Protocol):
    """A source of the current time, in seconds since the epoch (UTC)."""

    def __call__(self) -> float:
        """The current time."""
        ...


SYSTEM_CLOCK: Final[Clock] = time.time
