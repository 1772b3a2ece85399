"""The store's clock: the one clock timers are due on (``open_store(url, clock=...)``).

Workers, clients and servers run on machines whose clocks disagree; a timer whose due time
one of them wrote and another compared with its own clock fires early or late by their skew.
So the store's clock is authoritative for timers:

* a commit's timers arrive due at ``fire_at`` on the committer's clock, the one its
  ``WorkflowCommit.now`` was read from; the store keeps them due ``fire_at - now`` seconds
  after its own clock's reading at the commit (the committer's skew cancels out);
* ``fire_due_timers`` fires what is due on the store's clock (the caller's ``now`` only
  stamps the events it appends, as every other write's does);
* ``next_wakeup`` reports a timer's due time on the caller's clock (``now`` plus the time
  left on the store's clock), so callers wait the right time whatever their skew.

Which clock that is (``StoreClock``): ``"own"`` (the default), the store's own clock, i.e.
the database server's for PostgreSQL (``clock_timestamp()``, read in the statements) and this
machine's for SQLite (one file on one machine) and memory; a ``Clock``, for a store in
virtual time (``durable.testing.Environment`` passes its ``VirtualClock``); or ``"caller"``,
the ``now`` each call is given, for tests that drive a store with explicit times (the
conformance suite). Everything else about time (leases, retries, schedules) still runs on
the callers' clocks.
"""

from __future__ import annotations

import time
from typing import Final, Literal, Union

from msgspec.structs import replace

from .._clock import Clock
from ..errors import InvalidArgumentError
from ._records import WorkflowCommit

__all__ = ["CALLER_CLOCK", "OWN_CLOCK", "StoreClock", "StoreClocked", "check_store_clock"]

OWN_CLOCK: Final = "own"
CALLER_CLOCK: Final = "caller"
StoreClock = Union[Clock, Literal["own", "caller"]]


def check_store_clock(clock: object) -> StoreClock:
    """``clock`` if it names a store clock, else ``InvalidArgumentError``."""
    if clock in (OWN_CLOCK, CALLER_CLOCK) or (callable(clock) and not isinstance(clock, str)):
        return clock  # pyright: ignore[reportReturnType]
    raise InvalidArgumentError(f"a store's clock is 'own', 'caller' or a clock (a callable "
                               f"returning epoch seconds), not {clock!r}")


class StoreClocked:
    """The store's clock, for the stores' timer roles (a base of every store)."""

    clock: StoreClock = OWN_CLOCK

    def _store_time(self, now: float) -> float | None:
        """The store's time when a caller's clock reads ``now``; None when the store reads
        its own clock where it compares (PostgreSQL's server)."""
        clock = self.clock
        if clock == CALLER_CLOCK:
            return now
        if clock == OWN_CLOCK:
            return self._own_time()
        return clock()

    def _own_time(self) -> float | None:
        """The store's own clock: this machine's (overridden where the server's is read)."""
        return time.time()

    def _due_on_store_clock(self, commit: WorkflowCommit) -> WorkflowCommit:
        """``commit`` with its timers due on the store's clock (see the module docstring)."""
        store_now = self._store_time(commit.now)
        if not commit.timers or store_now is None or store_now == commit.now:
            return commit
        shift = store_now - commit.now
        return replace(commit, timers=[replace(t, fire_at=t.fire_at + shift)
                                       for t in commit.timers])
