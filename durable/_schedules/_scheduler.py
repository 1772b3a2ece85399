"""``Scheduler``: claims due schedules, starts their runs and records what it did.

Run by ``durable server`` (a loop of its own) and by the embedded worker's local dispatcher.
Exactly once per due time, with any number of them on one store:

* a scheduler leases the schedules it processes (``Store.claim_schedules``: disjoint sets for
  concurrent callers), so one pass at a time works on a schedule;
* a pass records what it will start (the intent, ``starting``) before it starts anything,
  then starts those runs, then clears the intent; a scheduler that crashed in between is
  replaced once its lease expires, and its successor carries out the recorded intent first;
* a run's workflow id is derived from the schedule id and the due time
  (:func:`run_workflow_id`), so starting it again returns the existing execution;
* every write is a compare-and-set on the schedule's revision that the lease holder alone
  may make; when a client changed the schedule meanwhile (pause, trigger, ...), the pass is
  merged into the fresh record (:func:`apply`) and written again.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Final, Protocol

from msgspec.structs import replace

from .._clock import SYSTEM_CLOCK, Clock
from .._history import CancelRequested, WorkflowStarted
from .._queues import route
from .._stores import TERMINAL_STATUSES, ExecutionStore, ScheduleStore, TaskRef, workflow_ref
from .._stores._schedule_records import ScheduleRecord, ScheduleRun
from ._plan import Plan, apply, next_check, plan, run_workflow_id, settle

__all__ = ["Scheduler", "SchedulerStore"]

logger = logging.getLogger("durable.schedules")

LEASE: Final = 10.0  # seconds a pass may take before another scheduler takes the schedule over
_COMMIT_RETRIES: Final = 20


class SchedulerStore(ExecutionStore, ScheduleStore, Protocol):
    """What a scheduler needs of a store: its schedules, and the executions it starts and
    cancels."""


class Scheduler:
    """Processes due schedules of ``store`` as ``owner``; returns hints for what it started."""

    def __init__(self, store: SchedulerStore, *, owner: str | None = None, lease: float = LEASE,
                 batch: int = 50, clock: Clock = SYSTEM_CLOCK) -> None:
        self.store = store
        self.clock = clock  # the time runs are created at (the passes' ``now`` is given)
        self.owner = owner or f"scheduler:{uuid.uuid4().hex[:12]}"
        self.lease = lease
        self.batch = batch

    async def run_due(self, now: float) -> list[TaskRef]:
        """One batch of due schedules, processed; the hints of the runs started or cancelled."""
        claimed = await self.store.claim_schedules(self.owner, lease=self.lease, now=now,
                                                   limit=self.batch)
        refs: list[TaskRef] = []
        for record in claimed:
            refs += await self._process(record, now)
        return refs

    async def run_one(self, tenant: str, schedule_id: str, now: float) -> list[TaskRef]:
        """Process one schedule now if it is due and free (a manual trigger); the hints."""
        claimed = await self.store.claim_schedules(self.owner, lease=self.lease, now=now,
                                                   limit=1, key=(tenant, schedule_id))
        return await self._process(claimed[0], now) if claimed else []

    async def next_check(self) -> float | None:
        """The earliest time a schedule needs a scheduler."""
        return await self.store.next_schedule_check()

    async def _process(self, record: ScheduleRecord, now: float) -> list[TaskRef]:
        refs: list[TaskRef] = []
        if record.starting or record.cancelling:  # the intent of a scheduler that crashed
            refs += await self._carry_out(record)
            found = await self._settle(record, now, release=False)
            if found is None:
                return refs
            record = found
        finished = await self._finished(record.tenant, record.running)
        decided = plan(_without(record, finished), now)
        runs = [ScheduleRun(r.due, run_workflow_id(record.schedule_id, r), self.clock(), r.manual)
                for r in decided.starts]
        acting = bool(runs or decided.cancels)
        intent = await self._commit(record, decided, runs, finished, now, release=not acting)
        if intent is not None and acting:
            refs += await self._carry_out(intent)
            await self._settle(intent, now, release=True)
        return refs

    async def _finished(self, tenant: str, running: list[str]) -> set[str]:
        """The runs among ``running`` that have ended (or are gone)."""
        done: set[str] = set()
        for workflow_id in running:
            execution = await self.store.get_execution(tenant, workflow_id)
            if execution is None or execution.status in TERMINAL_STATUSES:
                done.add(workflow_id)
        return done

    async def _carry_out(self, record: ScheduleRecord) -> list[TaskRef]:
        """Start the runs of ``record.starting`` and cancel ``record.cancelling`` (both
        idempotent: a start of an existing workflow id returns that execution)."""
        for run in record.starting:
            started = WorkflowStarted(1, 0.0, record.workflow, record.version, run.workflow_id,
                                      uuid.uuid4().hex, record.tenant, record.args,
                                      record.kwargs, queue=record.queue)
            await self.store.create_execution(started, now=self.clock())
        reason = (f"cancelled by its schedule {record.schedule_id!r} "
                  "(overlap policy cancel_other)")
        for workflow_id in record.cancelling:
            await self.store.append_input(record.tenant, workflow_id,
                                          CancelRequested(0, 0.0, reason), dedup="cancel",
                                          now=self.clock())
        hosted_as = route(record.workflow, record.queue)
        return [workflow_ref(record.tenant, w, hosted_as) for w in
                [*(r.workflow_id for r in record.starting), *record.cancelling]]

    async def _commit(self, claimed: ScheduleRecord, decided: Plan, started: list[ScheduleRun],
                      finished: set[str], now: float, *, release: bool) -> ScheduleRecord | None:
        """Record the pass (with its intent); on a client's concurrent change, merge it into
        the fresh record. The stored record, or None when the schedule is gone or the lease
        was lost."""
        return await self._cas(claimed, lambda fresh: apply(fresh, claimed, decided, started,
                                                            finished, now), now, release)

    async def _settle(self, record: ScheduleRecord, now: float, *,
                      release: bool) -> ScheduleRecord | None:
        """Record that the intent was carried out."""
        return await self._cas(record, lambda fresh: settle(fresh, now), now, release)

    async def _cas(self, record: ScheduleRecord,
                   change: Callable[[ScheduleRecord], ScheduleRecord], now: float,
                   release: bool) -> ScheduleRecord | None:
        fresh: ScheduleRecord | None = record
        for _ in range(_COMMIT_RETRIES):
            if fresh is None:
                return None  # deleted meanwhile: its runs go on, unrecorded
            updated = change(fresh)
            if await self.store.update_schedule(updated, next_check=next_check(updated, now),
                                                owner=self.owner, release=release):
                return updated
            fresh = await self.store.get_schedule(record.tenant, record.schedule_id)
        # Lost the lease (the pass took longer than it): the new holder carries out the
        # recorded intent, or redoes the pass, with the same workflow ids.
        logger.warning("schedule %s/%s: could not record a pass; another scheduler took over",
                       record.tenant, record.schedule_id)
        return None


def _without(record: ScheduleRecord, finished: set[str]) -> ScheduleRecord:
    if not finished:
        return record
    return replace(record, running=[w for w in record.running if w not in finished])
