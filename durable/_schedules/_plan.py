"""What one pass over a schedule does: pure decisions, no I/O (the scheduler does the I/O).

A pass looks at, in order: a buffered run (it starts once nothing is running), the manual
triggers, then every due time from ``next_due`` up to now. Each candidate starts, or is
skipped, buffered or preceded by cancelling the running ones, as the overlap policy says.
Due times older than the catch-up window are missed (counted, never started).

The decisions only ever depend on which runs are still running, and runs only finish, so a
scheduler that takes over from one that crashed mid-pass starts every run its predecessor
started (the same workflow ids: the starts are idempotent), and maybe more.
"""

from __future__ import annotations

import enum
import math
from datetime import datetime, timezone
from typing import Final, NamedTuple

from msgspec.structs import replace

from .._stores._schedule_records import PendingRun, ScheduleRecord, ScheduleRun
from ._spec import due_after

__all__ = ["Overlap", "Plan", "apply", "next_check", "plan", "run_workflow_id", "settle"]

MAX_PER_PASS: Final = 100  # due times one pass handles; the next pass follows at once
RECENT_RUNS: Final = 10  # recent runs a schedule remembers
# Runs a schedule keeps track of while they run (every pass looks each one up). Only
# ALLOW_ALL can have more running at once; the oldest then go untracked.
TRACKED_RUNS: Final = 100
BUFFER_POLL: Final = 1.0  # seconds between looks at a running run that a buffered one waits for
_MISSED_STEPS: Final = 10_000  # cron due times counted one by one when skipping a long outage


class Overlap(str, enum.Enum):
    """What a schedule does when a run is due while an earlier one is still running.

    Temporal's policies: ``SKIP`` (the default) does not start it; ``BUFFER_ONE`` starts it
    once the running one ends, keeping at most one waiting (later ones are skipped);
    ``BUFFER_ALL`` keeps all of them waiting and starts them one after another;
    ``CANCEL_OTHER`` cancels the running ones and starts it at once; ``ALLOW_ALL`` starts it
    at once, alongside.
    """

    SKIP = "skip"
    BUFFER_ONE = "buffer_one"
    BUFFER_ALL = "buffer_all"
    CANCEL_OTHER = "cancel_other"
    ALLOW_ALL = "allow_all"


class Plan(NamedTuple):
    """A pass's decisions, applied to the record by :func:`apply`."""

    starts: list[PendingRun]
    cancels: list[str]  # workflow ids of running runs to cancel (CANCEL_OTHER)
    consumed: list[PendingRun]  # manual triggers handled
    unbuffered: list[PendingRun]  # buffered runs that start now
    buffered: list[PendingRun]  # runs that join the buffer
    next_due: float | None
    skipped: int
    missed: int


def run_workflow_id(schedule_id: str, run: PendingRun) -> str:
    """The workflow id of the run a schedule starts for ``run``: the same in every process."""
    when = datetime.fromtimestamp(run.due, timezone.utc)
    if run.manual:
        return f"{schedule_id}-manual-{when:%Y-%m-%dT%H:%M:%S.%f}Z"
    return f"{schedule_id}-{when:%Y-%m-%dT%H:%M:%S}Z"


class _Pass:
    def __init__(self, record: ScheduleRecord) -> None:
        self.record = record
        self.running = list(record.running)
        self.buffer = list(record.buffered)
        self.plan = Plan([], [], [], [], [], record.next_due, 0, 0)

    def offer(self, run: PendingRun) -> None:
        """Start, skip, buffer or cancel-and-start ``run`` as its overlap policy says."""
        policy = Overlap(run.overlap or self.record.overlap)
        if not self.running or policy is Overlap.ALLOW_ALL:
            return self.start(run)
        if policy is Overlap.CANCEL_OTHER:
            self.plan.cancels.extend(self.running)
            self.running.clear()
            return self.start(run)
        if policy is Overlap.BUFFER_ALL or (policy is Overlap.BUFFER_ONE and not self.buffer):
            self.buffer.append(run)
            self.plan.buffered.append(run)
            return None
        self.plan = self.plan._replace(skipped=self.plan.skipped + 1)
        return None

    def start(self, run: PendingRun) -> None:
        self.plan.starts.append(run)
        self.running.append(run_workflow_id(self.record.schedule_id, run))


def plan(record: ScheduleRecord, now: float, *, limit: int = MAX_PER_PASS) -> Plan:
    """Decide what to start for ``record`` at ``now``; ``record.running`` holds only runs
    that are still running."""
    p = _Pass(record)
    if not record.paused and p.buffer and not p.running:
        p.plan.unbuffered.append(p.buffer.pop(0))
        p.start(p.plan.unbuffered[-1])
    for trigger in record.triggers:
        p.plan.consumed.append(trigger)
        p.offer(trigger)
    if record.paused or record.next_due is None:
        return p.plan
    due, missed = _skip_missed(record, record.next_due, now)
    for _ in range(limit):
        if due is None or due > now:
            break
        p.offer(PendingRun(due))
        due = due_after(record.spec, due)
    return p.plan._replace(next_due=due, missed=missed)


def _skip_missed(record: ScheduleRecord, due: float | None, now: float) -> tuple[float | None, int]:
    """The first due time inside the catch-up window, and how many before it were missed."""
    cutoff = now - record.catchup_window
    if due is None or due >= cutoff:
        return due, 0
    every = record.spec.every
    if every is not None:
        missed = math.ceil((cutoff - due) / every)
        return due + missed * every, missed
    missed = 0
    while due is not None and due < cutoff and missed < _MISSED_STEPS:
        due, missed = due_after(record.spec, due), missed + 1
    if due is not None and due < cutoff:  # a very long outage: stop counting one by one
        due = due_after(record.spec, cutoff - 1e-6)
    return due, missed


def apply(fresh: ScheduleRecord, claimed: ScheduleRecord, decided: Plan,
          started: list[ScheduleRun], finished: set[str], now: float) -> ScheduleRecord:
    """``fresh`` (the stored record, maybe changed by a client since ``claimed`` was read)
    with a pass's outcome: its runs as the intent ``starting`` (:func:`settle` makes them
    running once started), buffer, consumed triggers, counters and cursor."""
    cancelled = set(decided.cancels)
    still_running = [w for w in fresh.running if w not in finished and w not in cancelled]
    buffered = [b for b in fresh.buffered if b not in decided.unbuffered] + decided.buffered
    cursor_untouched = (fresh.next_due == claimed.next_due and fresh.spec == claimed.spec
                        and fresh.paused == claimed.paused)
    return replace(
        fresh, revision=fresh.revision + 1, updated_at=now,
        next_due=decided.next_due if cursor_untouched else fresh.next_due,
        running=still_running, buffered=buffered,
        triggers=[t for t in fresh.triggers if t not in decided.consumed],
        skipped=fresh.skipped + decided.skipped, missed=fresh.missed + decided.missed,
        starting=started, cancelling=decided.cancels)


def settle(record: ScheduleRecord, now: float) -> ScheduleRecord:
    """``record`` once its intent was carried out: the runs it started are running."""
    new = [r for r in record.starting if r.workflow_id not in record.running]
    return replace(record, revision=record.revision + 1, updated_at=now,
                   running=(record.running + [r.workflow_id for r in new])[-TRACKED_RUNS:],
                   recent=(record.recent + new)[-RECENT_RUNS:], runs=record.runs + len(new),
                   starting=[], cancelling=[])


def next_check(record: ScheduleRecord, now: float) -> float | None:
    """When a scheduler should look at ``record`` next; None when nothing can happen."""
    checks = [now] if record.triggers or record.starting or record.cancelling else []
    if not record.paused:
        if record.next_due is not None:
            checks.append(record.next_due)
        if record.buffered:
            checks.append(now + BUFFER_POLL if record.running else now)
    return min(checks, default=None)
