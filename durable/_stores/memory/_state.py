"""The memory store's data, and the writes every role makes through it.

``MemoryState`` owns the dicts. Its helpers are the store's few primitive writes (create an
execution, begin a run, append an input, drop a run's work, answer requests), shared by the
roles in this package as the SQL stores share their ``*_txn`` functions. Payloads go through a
MessagePack round trip where the other stores would store them, so that callers get back
what they would get from those (lists for tuples, and so on). Histories are kept as the
other stores keep them: rows of (seq, MessagePack body, chained checksum), checked when read
(``_integrity``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Sequence

import msgspec
from msgspec.structs import replace

from ..._history import Event, WorkflowStarted, encode_event
from .._integrity import Row, chain
from .._records import (
    FINISHED_REQUESTS, TERMINAL_STATUSES, ActionTask, ExecutionRecord, Reply, Request, Snapshot,
    TimerRecord,
)
from .._schedule_records import ScheduleRecord
from .._store_clock import OWN_CLOCK, StoreClock, StoreClocked, check_store_clock
from .._wakeup import Wakeup

__all__ = ["ActionKey", "Key", "Lease", "MemoryState", "RunKey", "ScheduleRow", "stored"]

Key = tuple[str, str]  # (tenant, workflow_id)
RunKey = tuple[str, str, str]  # (tenant, workflow_id, run_id)
ActionKey = tuple[str, str, str, int]  # (tenant, workflow_id, run_id, cmd)

_encode: Final = msgspec.msgpack.Encoder().encode
_decode: Final = msgspec.msgpack.Decoder().decode


def stored(payload: Any) -> Any:
    """A payload as the other stores give it back (tuples become lists, and so on)."""
    return _decode(_encode(payload))


@dataclass
class Lease:
    """Who holds a task and until when; when it is visible; when it was last dispatched."""

    visible_at: float
    owner: str | None = None
    until: float = 0.0
    attempt: int = 0
    error: str | None = None
    dispatched_at: float = 0.0
    requested: bool = False

    def claimable(self, now: float) -> bool:
        """Visible, and held by no one (or by a lease that expired)."""
        return self.visible_at <= now and (self.owner is None or self.until <= now)

    @property
    def due(self) -> float:
        """When it can next be claimed (the SQL stores' ``due`` column)."""
        return self.visible_at if self.owner is None else max(self.visible_at, self.until)


@dataclass
class ScheduleRow:
    """A schedule with the columns the other stores query it by."""

    record: ScheduleRecord
    next_check: float | None
    owner: str | None = None
    lease_until: float = 0.0

    def claimable(self, now: float) -> bool:
        """Due, and held by no live lease."""
        return (self.next_check is not None and self.next_check <= now
                and (self.owner is None or self.lease_until <= now))


class MemoryState(StoreClocked):
    """The store's dicts and its primitive writes; single event loop, no persistence.

    ``clock`` is the clock timers are due on (see ``_store_clock``): this machine's by default,
    a ``VirtualClock`` in ``durable.testing.Environment``.
    """

    def __init__(self, url: str = "memory://", *, clock: StoreClock = OWN_CLOCK) -> None:
        self.url = url
        self.clock = check_store_clock(clock)
        self.wakeup = Wakeup(reliable=True)  # one process: every end is reported here
        self._executions: dict[Key, ExecutionRecord] = {}
        # Invariant: a run's rows are ordered by seq (they are appended in order).
        self._histories: dict[RunKey, list[Row]] = {}
        self._runs: dict[Key, list[str]] = {}  # each execution's run ids, oldest first
        self._dedup: dict[RunKey, set[str]] = {}
        self._wf_tasks: dict[Key, Lease] = {}
        self._actions: dict[ActionKey, tuple[ActionTask, Lease]] = {}
        self._timers: dict[ActionKey, TimerRecord] = {}
        self._requests: dict[Key, dict[str, Request]] = {}
        self._snapshots: dict[RunKey, list[Snapshot]] = {}  # oldest first
        self._schedules: dict[Key, ScheduleRow] = {}

    async def close(self) -> None:
        """Nothing to release."""

    def _create(self, started: WorkflowStarted, now: float) -> tuple[ExecutionRecord, bool]:
        key = (started.tenant, started.workflow_id)
        existing = self._executions.get(key)
        if existing is not None:
            return existing, False
        record = ExecutionRecord(started.tenant, started.workflow_id, started.run_id,
                                 started.workflow, started.version, "running", now, now, 1,
                                 queue=started.queue, priority=started.priority,
                                 fairness_key=started.fairness_key)
        self._executions[key] = record
        self._begin_run(record, started, now)
        return record, True

    def _begin_run(self, record: ExecutionRecord, started: WorkflowStarted, now: float) -> None:
        run = (record.tenant, record.workflow_id, started.run_id)
        self._histories[run] = []
        self._write(run, [replace(started, seq=1, time=now)])
        self._runs.setdefault(run[:2], []).append(run[2])
        self._dedup[run] = set()
        self._wf_tasks[(record.tenant, record.workflow_id)] = Lease(now, dispatched_at=now)

    def _append(self, tenant: str, workflow_id: str, event: Event, dedup: str | None,
                now: float, run_id: str | None = None) -> int | None:
        """Append an input at the next seq and make the execution runnable; its seq, or None
        (no such execution, ended, another run than ``run_id``, ``dedup`` seen)."""
        key = (tenant, workflow_id)
        record = self._executions.get(key)
        if record is None or record.status in TERMINAL_STATUSES \
                or (run_id is not None and record.run_id != run_id):
            return None
        run = (tenant, workflow_id, record.run_id)
        if dedup is not None:
            if dedup in self._dedup[run]:
                return None
            self._dedup[run].add(dedup)
        seq = record.last_seq + 1
        self._write(run, [replace(event, seq=seq, time=now)])
        self._executions[key] = replace(record, last_seq=seq, updated_at=now)
        lease = self._wf_tasks.get(key)
        if lease is None:
            self._wf_tasks[key] = Lease(now, dispatched_at=now)
        else:
            lease.visible_at, lease.dispatched_at = min(lease.visible_at, now), now
        return seq

    def _write(self, run: RunKey, events: Sequence[Event]) -> None:
        """Append events (with their seqs set) to the run's rows, chaining their checksums."""
        rows = self._histories[run]
        first = events[0].seq
        prev = rows[-1][2] if rows and rows[-1][0] == first - 1 else None
        bodies = [encode_event(e) for e in events]
        rows.extend(zip([e.seq for e in events], bodies, chain(run, prev, bodies)))

    def _drop_run_work(self, run: RunKey) -> None:
        for k in [k for k in self._actions if k[:3] == run]:
            del self._actions[k]
        for k in [k for k in self._timers if k[:3] == run]:
            del self._timers[k]

    def _answer(self, key: Key, replies: Sequence[Reply]) -> None:
        """Record replies; requests that are answered already keep their answer."""
        requests = self._requests.get(key, {})
        for reply in replies:
            request = requests.get(reply.id)
            if request is None or request.status in FINISHED_REQUESTS:
                continue
            requests[reply.id] = replace(request, status=reply.status,
                                         result=stored(reply.result), error=reply.error)

    def _schedule_checks(self) -> list[float]:
        """When each schedule next needs a scheduler (its lease's end, while one holds it)."""
        return [row.next_check if row.owner is None else max(row.next_check, row.lease_until)
                for row in self._schedules.values() if row.next_check is not None]
