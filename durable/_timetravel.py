"""Time travel: an execution's state, data and suspended await as they were at a past moment.

A moment is a ``seq`` or a time. The history up to it is what had happened then; a workflow
task (its ``TaskCompleted`` and the command events after it) is one atomic step, so a moment
inside one counts as its end. Two ways to the answer, which agree (the tests prove it):

* from the record (the default): state and data are folded from the ``StateChanged`` /
  ``DataChanged`` events, the suspended await is the one each ``TaskCompleted`` records
  (``suspended_at``), and a snapshot (written by workers every N events) is the starting
  point, so only the events after it are read: cheap on long histories, no code needed;
* by replaying the workflow's code up to the moment (``replay=True``, or when the history does
  not record where the coroutine waited), exactly as a worker would after a crash.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, Final

import msgspec

from ._definitions import WorkflowDefinition, workflow_definition
from msgspec.structs import replace

from ._ports import HandlePort
from ._history import (
    INPUT_TYPES, CompleteWorkflow, ContinueAsNew, DataChanged, ErrorInfo, Event, FailWorkflow,
    StateChanged, TaskCompleted, WorkflowCancelled, WorkflowCompleted, WorkflowContinuedAsNew,
    WorkflowFailed, WorkflowStarted, WorkflowTerminated,
)
from ._payloads import dump_value
from ._replay import WorkflowInstance, replay
from ._stores import ExecutionRecord, Snapshot, Store
from .errors import ArgumentTypeError, HistoryError, HistoryRangeError, UnknownWorkflowError


__all__ = ["PAGE", "StateAt", "current_suspension", "events_after", "state_at"]

PAGE: Final = 1000  # events read per round trip
_INPUTS: Final = frozenset(INPUT_TYPES)

When = datetime | float | int


class StateAt(msgspec.Struct, frozen=True):
    """An execution as it was at one moment (``handle.state_at(when)``).

    ``seq`` and ``time`` are those of the last event that had happened; ``status``, ``state``
    and ``data`` are as the workflow had them; ``suspended_at`` is the ``file:line`` of the
    await its coroutine was suspended at (None before it first ran and once it ended);
    ``pending`` are inputs that had arrived but had not run yet; ``result`` / ``error`` are
    set once it had ended. ``status`` is ``"continued"`` for a run that had ended by
    continuing as new. ``replayed`` says the answer came from replaying code.
    """

    workflow_id: str
    run_id: str
    seq: int
    time: float
    status: str
    state: str | None
    data: dict[str, Any]
    suspended_at: str | None
    pending: list[Event] = []
    result: Any = None
    error: ErrorInfo | None = None
    replayed: bool = False


class _Point:
    """A moment: by ``seq`` or by time; events up to it had happened."""

    __slots__ = ("by_seq", "value")

    def __init__(self, when: When) -> None:
        if isinstance(when, bool) or not isinstance(when, (datetime, float, int)):
            raise ArgumentTypeError(f"state_at() takes a datetime, epoch seconds (a float) or a "
                                    f"seq (an int), not {when!r}")
        self.by_seq = isinstance(when, int)
        self.value: float = when.timestamp() if isinstance(when, datetime) else when

    def before(self, event: Event) -> bool:
        return event.seq <= self.value if self.by_seq else event.time <= self.value

    def check(self, record: ExecutionRecord) -> None:
        """Raise ``HistoryRangeError`` for a moment the execution's history does not reach."""
        if self.by_seq and not 1 <= self.value <= record.last_seq:
            raise HistoryRangeError(
                f"execution {record.workflow_id!r} has events 1 to {record.last_seq}; there is "
                f"no seq {self.value} (an int is a seq: pass epoch seconds as a float or a "
                "datetime)", workflow_id=record.workflow_id, when=self.value, first=1,
                last=record.last_seq)
        if not self.by_seq and self.value < record.created_at:
            raise HistoryRangeError(
                f"execution {record.workflow_id!r} started at {record.created_at} (epoch "
                f"seconds), after {self.value}: it did not exist then",
                workflow_id=record.workflow_id, when=self.value, first=record.created_at,
                last=record.updated_at)


class _Fold:
    """What the recorded events say, folded from a snapshot (or from nothing) onwards."""

    __slots__ = ("seq", "time", "status", "state", "data", "suspended_at", "pending", "result",
                 "error", "ran", "in_task")

    def __init__(self, snapshot: Snapshot | None) -> None:
        self.seq, self.time = (snapshot.seq, snapshot.time) if snapshot else (0, 0.0)
        self.status: str = snapshot.status if snapshot else "running"
        self.state: str | None = snapshot.state if snapshot else None
        self.data: dict[str, Any] = dict(snapshot.data) if snapshot else {}
        self.suspended_at: str | None = snapshot.suspended_at if snapshot else None
        self.pending: list[Event] = []
        self.result: Any = None
        self.error: ErrorInfo | None = None
        self.ran = snapshot is not None  # a workflow task has run
        self.in_task = False  # the last event is a TaskCompleted or one of its commands

    def finishes_task(self, event: Event) -> bool:
        """Whether ``event`` is a command event of the workflow task the last event is in."""
        return self.in_task and type(event) not in _INPUTS and type(event) is not TaskCompleted

    def add(self, event: Event) -> None:
        self.seq, self.time = event.seq, event.time
        kind = type(event)
        if kind is TaskCompleted:
            self.pending, self.ran, self.in_task = [], True, True
            if event.suspended_at is not None:  # type: ignore[union-attr]
                self.suspended_at = event.suspended_at  # type: ignore[union-attr]
        elif kind in _INPUTS:
            self.pending.append(event)
            self.in_task = False
        elif kind is StateChanged:
            self.state = event.state  # type: ignore[union-attr]
        elif kind is DataChanged:
            self._data(event)  # type: ignore[arg-type]
        elif kind in (WorkflowCompleted, WorkflowFailed, WorkflowCancelled,
                      WorkflowContinuedAsNew, WorkflowTerminated):
            self._end(event)

    def _data(self, event: DataChanged) -> None:
        if event.deleted:
            self.data.pop(event.key, None)
        else:
            self.data[event.key] = event.value

    def _end(self, event: Event) -> None:
        self.suspended_at = None
        if isinstance(event, WorkflowCompleted):
            self.status, self.result = "completed", event.result
        elif isinstance(event, WorkflowFailed):
            self.status, self.error = "failed", event.error
        elif isinstance(event, WorkflowContinuedAsNew):
            self.status = "continued"
        elif isinstance(event, WorkflowTerminated):
            self.status, self.error = "failed", ErrorInfo("WorkflowTerminated", event.reason)
        else:
            self.status = "cancelled"

    def answer(self, record: ExecutionRecord) -> StateAt:
        return StateAt(record.workflow_id, record.run_id, self.seq, self.time, self.status,
                       self.state, self.data, self.suspended_at if self.ran else None,
                       self.pending, self.result, self.error)


async def events_after(store: Store, record: ExecutionRecord,
                       after_seq: int) -> AsyncIterator[Event]:
    """The run's events after ``after_seq``, read a page at a time."""
    while True:
        page = await store.read_history(record.tenant, record.workflow_id, run_id=record.run_id,
                                        after_seq=after_seq, limit=PAGE)
        for event in page:
            yield event
        if len(page) < PAGE:
            return
        after_seq = page[-1].seq


async def _fold(store: Store, record: ExecutionRecord, point: _Point,
                snapshot: Snapshot | None, keep: list[Event] | None = None) -> _Fold:
    fold, past = _Fold(snapshot), False
    async for event in events_after(store, record, snapshot.seq if snapshot else 0):
        if past or not point.before(event):
            if not fold.finishes_task(event):  # a task is atomic: its commands come along
                break
            past = True
        fold.add(event)
        if keep is not None:
            keep.append(event)
    return fold


async def state_at(handle: HandlePort, when: When, *, replay_code: bool,
                   run_id: str | None = None) -> StateAt:
    """The execution at ``when`` (see ``WorkflowHandle.state_at``)."""
    point = _Point(when)
    record = await _run_record(handle, await handle._record(), run_id)
    point.check(record)
    store = handle.client.store
    if not replay_code:
        snapshot = await store.find_snapshot(
            record.tenant, record.workflow_id, record.run_id,
            seq=int(point.value) if point.by_seq else None,
            time=None if point.by_seq else point.value)
        fold = await _fold(store, record, point, snapshot)
        if not (fold.ran and fold.status == "running" and fold.suspended_at is None):
            return fold.answer(record)
        # The history does not record where the coroutine waited: ask the code, if it is here.
        if _definition(handle, record) is None:
            return fold.answer(record)
    defn = _definition(handle, record)
    if defn is None:
        raise UnknownWorkflowError(
            f"replaying execution {record.workflow_id!r} needs the code of workflow "
            f"{record.workflow!r}: import the module that defines it (durable show --module "
            "MOD)", name=record.workflow)
    events: list[Event] = []
    await _fold(store, record, point, None, events)
    return _replayed(defn, record, events)


async def _run_record(handle: HandlePort, record: ExecutionRecord,
                      run_id: str | None) -> ExecutionRecord:
    """The record of run ``run_id``: the current one, or an earlier one it continued from."""
    if run_id is None or run_id == record.run_id:
        return record
    events = await handle.client.store.read_history(record.tenant, record.workflow_id,
                                                    run_id=run_id)
    if not events:
        raise HistoryRangeError(f"execution {record.workflow_id!r} has no run {run_id!r}",
                                workflow_id=record.workflow_id, when=run_id, first=None,
                                last=None)
    return replace(record, run_id=run_id, last_seq=len(events), created_at=events[0].time,
                   updated_at=events[-1].time)


def _definition(handle: HandlePort, record: ExecutionRecord) -> WorkflowDefinition | None:
    if handle._definition is not None:
        return handle._definition
    try:
        return workflow_definition(record.workflow)
    except UnknownWorkflowError:
        return None


def _replayed(defn: WorkflowDefinition, record: ExecutionRecord, events: list[Event]) -> StateAt:
    """Replay ``events`` (a prefix of the history) with today's code; raise on a divergence."""
    started = events[0] if events else None
    if not isinstance(started, WorkflowStarted):
        raise HistoryError(f"the history of {record.workflow_id!r} does not start with "
                           "WorkflowStarted")
    instance = WorkflowInstance(defn, started)
    try:
        pending, failed = replay(instance, events)
        if failed is not None:
            raise failed.error  # type: ignore[misc]
        status, result, error = "running", None, None
        if isinstance(instance.outcome, CompleteWorkflow):
            status, result = "completed", instance.outcome.result
        elif isinstance(instance.outcome, FailWorkflow):
            status, error = "failed", instance.outcome.error
        elif isinstance(instance.outcome, ContinueAsNew):
            status = "continued"
        elif instance.outcome is not None:
            status = "cancelled"
        last = events[-1]
        return StateAt(record.workflow_id, record.run_id, last.seq, last.time, status,
                       instance.state, dump_value(dict(instance.data), "ctx.data"),
                       instance.suspended_at(), list(pending), result, error, replayed=True)
    finally:
        instance.close()


async def current_suspension(store: Store, record: ExecutionRecord) -> str | None:
    """Where a running execution waits now, from its latest snapshot and the events after it."""
    if record.status != "running":
        return None
    snapshot = await store.find_snapshot(record.tenant, record.workflow_id, record.run_id)
    fold = _Fold(snapshot)
    async for event in events_after(store, record, snapshot.seq if snapshot else 0):
        fold.add(event)
    return fold.suspended_at if fold.ran else None
