"""``client.schedule(...)``, ``ScheduleHandle`` and ``ScheduleDescription``."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Final

import msgspec
from msgspec.structs import replace

from .._ports import ClientPort
from .._definitions import Duration, WorkflowDefinition, seconds
from .._payloads import check_size, payload_limit
from .._stores._schedule_records import PendingRun, ScheduleRecord, ScheduleRun
from .._validate import MAX_ID_BYTES, check_id, check_text, show
from ..errors import (
    InputError, InvalidScheduleError, ScheduleAlreadyExistsError, ScheduleNotFoundError,
    StoreUnavailableError,
)
from ._plan import Overlap, next_check, run_workflow_id
from ._scheduler import Scheduler
from ._spec import due_after, make_spec, next_dues

__all__ = ["ScheduleDescription", "ScheduleHandle", "create_schedule", "describe"]

DEFAULT_CATCHUP_WINDOW: Final = timedelta(days=365)  # Temporal's default: catch up on all
_UPDATE_RETRIES: Final = 100
MAX_BACKFILL: Final = 1_000  # due times one backfill may start
# A schedule's runs are ``<id>-manual-<UTC time to the microsecond>Z`` (35 more characters):
# ids stay within MAX_ID_BYTES.
MAX_SCHEDULE_ID_BYTES: Final = MAX_ID_BYTES - 64


class ScheduleDescription(msgspec.Struct, frozen=True):
    """A snapshot of a schedule (``ScheduleHandle.describe()``, ``client.list_schedules()``).

    ``next_runs`` are the coming due times (UTC), ``recent_runs`` the last runs started,
    ``running`` the workflow ids of runs not known to have ended (the last 100 at most),
    ``buffered`` how many runs
    wait for them; ``runs``, ``skipped`` (overlap policy) and ``missed`` (outside the
    catch-up window) count since the schedule was created.
    """

    schedule_id: str
    tenant: str
    workflow: str
    args: list[Any]
    kwargs: dict[str, Any]
    cron: str | None
    every: float | None
    timezone: str
    overlap: Overlap
    catchup_window: float
    paused: bool
    note: str
    next_runs: list[datetime]
    recent_runs: list[ScheduleRun]
    running: list[str]
    buffered: int
    runs: int
    skipped: int
    missed: int
    created_at: float
    updated_at: float


def describe(record: ScheduleRecord, *, next_runs: int = 5) -> ScheduleDescription:
    """The public view of a stored schedule."""
    upcoming: list[datetime] = []
    if not record.paused and record.next_due is not None:
        first = record.next_due
        dues = [first, *next_dues(record.spec, first, max(next_runs - 1, 0))][:next_runs]
        upcoming = [datetime.fromtimestamp(d, timezone.utc) for d in dues]
    spec = record.spec
    return ScheduleDescription(
        record.schedule_id, record.tenant, record.workflow, record.args, record.kwargs,
        spec.cron, spec.every, spec.timezone, Overlap(record.overlap), record.catchup_window,
        record.paused, record.note, upcoming, record.recent, record.running,
        len(record.buffered), record.runs, record.skipped, record.missed, record.created_at,
        record.updated_at)


class ScheduleHandle:
    """A reference to one schedule, by tenant and schedule id (a tenant the client may act
    for: ``TenantPermissionError`` otherwise)."""

    def __init__(self, client: ClientPort, schedule_id: str, tenant: str) -> None:
        self.client = client
        self.schedule_id = schedule_id
        self._tenant = client.acts_for(tenant)

    def __repr__(self) -> str:
        return f"<ScheduleHandle {self.tenant}/{self.schedule_id}>"

    @property
    def tenant(self) -> str:
        """The schedule's tenant (fixed: a handle acts for one tenant)."""
        return self._tenant

    async def _record(self) -> ScheduleRecord:
        record = await self.client.store.get_schedule(self.tenant, self.schedule_id)
        if record is None:
            raise ScheduleNotFoundError(
                f"no schedule {self.schedule_id!r} in tenant {self.tenant!r}",
                schedule_id=self.schedule_id, tenant=self.tenant)
        return record

    async def describe(self, *, next_runs: int = 5) -> ScheduleDescription:
        """Definition, state, the next ``next_runs`` due times and the recent runs."""
        return describe(await self._record(), next_runs=next_runs)

    async def pause(self, note: str | None = None) -> None:
        """Start nothing until :meth:`unpause` (manual :meth:`trigger` still works)."""
        if note is not None:
            _field(self.schedule_id, "note", note, check_text, "a schedule's note")
        await self._update(lambda r, now: replace(
            r, paused=True, note=r.note if note is None else note))

    async def unpause(self, note: str | None = None) -> None:
        """Resume from now on: due times that passed while paused are not caught up."""
        if note is not None:
            _field(self.schedule_id, "note", note, check_text, "a schedule's note")
        await self._update(lambda r, now: replace(
            r, paused=False, note=r.note if note is None else note,
            next_due=r.next_due if not r.paused else due_after(r.spec, now)))

    async def trigger(self, *, overlap: Overlap | str | None = None) -> None:
        """Start a run now (subject to ``overlap``, by default the schedule's policy).

        The run's workflow id is ``<schedule id>-manual-<UTC time>``; see ``describe()``.
        """
        policy = None if overlap is None else _overlap(self.schedule_id, overlap).value
        await self._update(lambda r, now: replace(
            r, triggers=[*r.triggers, PendingRun(now, manual=True, overlap=policy)]))
        scheduler = Scheduler(self.client.store, clock=self.client.clock)
        refs = await scheduler.run_one(self.tenant, self.schedule_id, self.client.clock())
        await self.client.publish(refs)  # else a busy scheduler has it, and publishes

    async def backfill(self, start: datetime | float, end: datetime | float, *,
                       overlap: Overlap | str | None = None) -> int:
        """Start the runs of every due time from ``start`` to ``end`` (both included), as if
        they had been due then, subject to ``overlap`` (by default the schedule's policy);
        return how many runs that queues. The runs have the ids of scheduled runs, so a due
        time that already ran is not started again. Paused schedules backfill too.
        """
        first, last = _moment(self.schedule_id, "start", start), _moment(self.schedule_id,
                                                                          "end", end)
        if first > last:
            raise InvalidScheduleError(
                f"backfill of schedule {self.schedule_id!r}: start {first} is after end {last}",
                schedule_id=self.schedule_id, field="start", value=show(start))
        policy = None if overlap is None else _overlap(self.schedule_id, overlap).value
        spec = (await self._record()).spec
        dues = [d for d in next_dues(spec, first - 1e-6, MAX_BACKFILL + 1) if d <= last]
        if len(dues) > MAX_BACKFILL:
            raise InvalidScheduleError(
                f"backfill of schedule {self.schedule_id!r} covers more than {MAX_BACKFILL} due "
                "times: split the range into several backfills", schedule_id=self.schedule_id,
                field="end", value=show(end))
        store = self.client.store
        runs = [run for run in (PendingRun(due, overlap=policy) for due in dues)
                if await store.get_execution(self.tenant,
                                             run_workflow_id(self.schedule_id, run)) is None]
        if not runs:
            return 0
        await self._update(lambda r, now: replace(r, triggers=[*r.triggers, *runs]))
        scheduler = Scheduler(self.client.store, clock=self.client.clock)
        refs = await scheduler.run_one(self.tenant, self.schedule_id, self.client.clock())
        await self.client.publish(refs)
        return len(runs)

    async def delete(self) -> None:
        """Delete the schedule; runs it started go on."""
        if not await self.client.store.delete_schedule(self.tenant, self.schedule_id):
            await self._record()  # raises ScheduleNotFoundError

    async def _update(self, change: Callable[[ScheduleRecord, float], ScheduleRecord]) -> None:
        """Compare-and-set ``change`` onto the stored record, retrying on conflicts."""
        for _ in range(_UPDATE_RETRIES):
            record, now = await self._record(), self.client.clock()
            updated = replace(change(record, now), revision=record.revision + 1, updated_at=now)
            if await self.client.store.update_schedule(updated,
                                                       next_check=next_check(updated, now)):
                self.client.store.wakeup.schedule_written()
                return
        raise StoreUnavailableError(
            f"schedule {self.schedule_id!r} kept changing while being updated; try again",
            url=self.client.store.url)


async def create_schedule(client: ClientPort, defn: WorkflowDefinition, args: tuple[Any, ...], *,
                          schedule_id: str, tenant: str, cron: str | None,
                          every: Duration | None, offset: Duration, tz: str,
                          overlap: Overlap | str, catchup_window: Duration, paused: bool,
                          note: str, replace_existing: bool) -> ScheduleHandle:
    """Validate and store a schedule (see ``ClientPort.schedule``)."""
    with payload_limit(client.max_payload_bytes):
        record = _new_record(defn, args, now=client.clock(), schedule_id=schedule_id,
                             tenant=tenant, cron=cron, every=every, offset=offset, tz=tz,
                             overlap=overlap, catchup_window=catchup_window, paused=paused,
                             note=note)
    stored, created = await client.store.create_schedule(
        record, next_check=next_check(record, record.created_at))
    handle = ScheduleHandle(client, schedule_id, tenant)
    if created:
        client.store.wakeup.schedule_written()
    if created or _same_definition(stored, record):
        return handle
    if not replace_existing:
        raise ScheduleAlreadyExistsError(
            f"schedule {schedule_id!r} of tenant {tenant!r} exists with another definition: "
            "pass replace=True (durable schedule create --replace) to change it, or delete it "
            "first", schedule_id=schedule_id,
            tenant=tenant)
    await handle._update(lambda r, now: _redefined(r, record, now))
    return handle


def _new_record(defn: WorkflowDefinition, args: tuple[Any, ...], *, now: float,
                schedule_id: str, tenant: str, cron: str | None, every: Duration | None,
                offset: Duration, tz: str, overlap: Overlap | str, catchup_window: Duration,
                paused: bool, note: str) -> ScheduleRecord:
    _field(schedule_id, "id", schedule_id, check_id, "a schedule id",
           limit=MAX_SCHEDULE_ID_BYTES)
    _field(schedule_id, "note", note, check_text, "a schedule's note")
    if not isinstance(paused, bool):
        raise InvalidScheduleError(f"paused is a bool, not {show(paused)}",
                                   schedule_id=schedule_id, field="paused", value=show(paused))
    spec = make_spec(schedule_id, cron=cron, every=_seconds(schedule_id, "every", every),
                     offset=_seconds(schedule_id, "offset", offset) or 0.0, tz=tz, now=now)
    window = _seconds(schedule_id, "catchup_window", catchup_window)
    if window is None or window < 0:
        raise InvalidScheduleError(
            f"catchup_window={show(catchup_window)} of schedule {schedule_id!r} must be >= 0",
            schedule_id=schedule_id, field="catchup_window", value=show(catchup_window))
    a, k = defn.params.dump(args, {})
    check_size([a, k], f"arguments of schedule {schedule_id!r}")
    return ScheduleRecord(tenant, schedule_id, defn.name, defn.version, a, k, spec,
                          _overlap(schedule_id, overlap).value, window, now, now, paused=paused,
                          note=note, next_due=due_after(spec, now), queue=defn.queue)


def _moment(schedule_id: str, field: str, value: datetime | float) -> float:
    """Epoch seconds of a backfill bound (an aware datetime, or epoch seconds)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidScheduleError(
                f"backfill of schedule {schedule_id!r}: {field} is a naive datetime; give it a "
                "time zone (e.g. tzinfo=timezone.utc)", schedule_id=schedule_id, field=field,
                value=show(value))
        return value.timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool) and \
            math.isfinite(value):
        return float(value)
    raise InvalidScheduleError(
        f"backfill of schedule {schedule_id!r}: {field} must be a datetime or epoch seconds, "
        f"not {show(value)}", schedule_id=schedule_id, field=field, value=show(value))


def _seconds(schedule_id: str, field: str, value: Duration | None) -> float | None:
    if value is None:
        return None
    try:
        return seconds(value, field)
    except InputError as exc:
        raise InvalidScheduleError(
            f"{field}={show(value)} of schedule {schedule_id!r} is not a duration: use a finite "
            f"number of seconds or a timedelta ({exc.message})", schedule_id=schedule_id,
            field=field, value=show(value)) from None


def _field(schedule_id: Any, field: str, value: Any, check: Callable[..., Any], what: str,
           **options: Any) -> None:
    """``check(value, what)``, its error an ``InvalidScheduleError`` naming ``field``."""
    try:
        check(value, what, **options)
    except InputError as exc:
        raise InvalidScheduleError(f"{exc.message} (schedule {show(schedule_id)})",
                                   schedule_id=show(schedule_id), field=field,
                                   value=show(value)) from None


def _overlap(schedule_id: str, overlap: Overlap | str) -> Overlap:
    try:
        return Overlap(overlap)
    except ValueError:
        names = ", ".join(repr(o.value) for o in Overlap)
        raise InvalidScheduleError(
            f"unknown overlap policy {show(overlap)} for schedule {schedule_id!r}: use one of "
            f"{names} (or durable.Overlap)", schedule_id=schedule_id, field="overlap",
            value=show(overlap)) from None


def _definition(r: ScheduleRecord) -> tuple[Any, ...]:
    return (r.workflow, r.version, r.args, r.kwargs, r.spec, r.overlap, r.catchup_window)


def _same_definition(a: ScheduleRecord, b: ScheduleRecord) -> bool:
    return _definition(a) == _definition(b)


def _redefined(stored: ScheduleRecord, new: ScheduleRecord, now: float) -> ScheduleRecord:
    """``stored`` with ``new``'s definition; a new spec is due from now on. A paused schedule
    stays paused (``unpause`` resumes it from then on, catching nothing up)."""
    next_due = stored.next_due if stored.spec == new.spec else due_after(new.spec, now)
    return replace(stored, workflow=new.workflow, version=new.version, args=new.args,
                   kwargs=new.kwargs, spec=new.spec, overlap=new.overlap,
                   catchup_window=new.catchup_window, paused=stored.paused or new.paused,
                   note=new.note, next_due=next_due)
