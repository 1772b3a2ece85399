"""``memory://``: the in-process store, for tests and embedding. Held to the conformance suite."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Collection, Sequence

from msgspec.structs import replace

from .._history import Event, TimerFired, WorkflowStarted
from ..errors import DatabaseActionError, WorkflowNotFoundError
from ._base import (
    FINISHED_REQUESTS, TERMINAL_STATUSES, ActionTask, ExecutionRecord, ExecutionUpdate, Outcome,
    Reply, Request, Signal, Snapshot, Start, TaskRef, TimerRecord, Wakeup, WorkflowTask, action_ref,
    workflow_ref,
)
from ._memory_schedules import MemorySchedules

__all__ = ["MemoryStore"]

_Key = tuple[str, str]  # (tenant, workflow_id)


@dataclass
class _Lease:
    visible_at: float
    owner: str | None = None
    until: float = 0.0
    attempt: int = 0
    error: str | None = None
    dispatched_at: float = 0.0
    requested: bool = False

    def claimable(self, now: float) -> bool:
        return self.visible_at <= now and (self.owner is None or self.until <= now)


def _scan_key(record: ExecutionRecord) -> tuple[float, str, str]:
    return record.created_at, record.tenant, record.workflow_id


class MemoryStore(MemorySchedules):
    """Everything in dicts; single event loop, no persistence."""

    transaction_driver: ClassVar[str | None] = None  # no transactions: no database actions

    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self.wakeup = Wakeup(reliable=True)  # one process: every end is reported here
        self._executions: dict[_Key, ExecutionRecord] = {}
        self._histories: dict[tuple[str, str, str], list[Event]] = {}
        self._dedup: dict[tuple[str, str, str], set[str]] = {}
        self._wf_tasks: dict[_Key, _Lease] = {}
        self._actions: dict[tuple[str, str, str, int], tuple[ActionTask, _Lease]] = {}
        self._timers: dict[tuple[str, str, str, int], TimerRecord] = {}
        self._requests: dict[_Key, dict[str, Request]] = {}
        self._snapshots: dict[tuple[str, str, str], list[Snapshot]] = {}  # oldest first
        self._schedules = {}

    # ---- executions and history ---------------------------------------------------------

    async def create_execution(self, started: Any, *, now: float) -> tuple[ExecutionRecord, bool]:
        record, created = self._create(started, now)
        if created:
            self.wakeup.notify()
        return record, created

    def _create(self, started: WorkflowStarted, now: float) -> tuple[ExecutionRecord, bool]:
        key = (started.tenant, started.workflow_id)
        existing = self._executions.get(key)
        if existing is not None:
            return existing, False
        record = ExecutionRecord(started.tenant, started.workflow_id, started.run_id,
                                 started.workflow, started.version, "running", now, now, 1)
        self._executions[key] = record
        self._begin_run(record, started, now)
        return record, True

    def _begin_run(self, record: ExecutionRecord, started: WorkflowStarted, now: float) -> None:
        run = (record.tenant, record.workflow_id, started.run_id)
        self._histories[run] = [replace(started, seq=1, time=now)]
        self._dedup[run] = set()
        self._wf_tasks[(record.tenant, record.workflow_id)] = _Lease(now, dispatched_at=now)

    async def get_execution(self, tenant: str, workflow_id: str) -> ExecutionRecord | None:
        return self._executions.get((tenant, workflow_id))

    async def list_executions(self, tenant: str | None = None, *, status: str | None = None,
                              limit: int = 100) -> list[ExecutionRecord]:
        rows = [r for r in self._executions.values()
                if (tenant is None or r.tenant == tenant) and (status is None or r.status == status)]
        rows.sort(key=lambda r: (r.created_at, r.workflow_id), reverse=True)
        return rows[:limit]

    async def scan_executions(self, tenant: str | None = None, *, workflow: str | None = None,
                              status: str | None = None, since: float | None = None,
                              after: ExecutionRecord | None = None,
                              limit: int = 500) -> list[ExecutionRecord]:
        cursor = None if after is None else _scan_key(after)
        rows = [r for r in self._executions.values()
                if (tenant is None or r.tenant == tenant)
                and (workflow is None or r.workflow == workflow)
                and (status is None or r.status == status)
                and (since is None or r.created_at >= since)
                and (cursor is None or _scan_key(r) > cursor)]
        rows.sort(key=_scan_key)
        return rows[:limit]

    async def read_history(self, tenant: str, workflow_id: str, *, run_id: str | None = None,
                           after_seq: int = 0, limit: int | None = None) -> list[Event]:
        record = self._executions.get((tenant, workflow_id))
        if record is None:
            return []
        events = self._histories.get((tenant, workflow_id, run_id or record.run_id), [])
        return events[after_seq:None if limit is None else after_seq + limit]

    async def append_input(self, tenant: str, workflow_id: str, event: Event, *,
                           dedup: str | None = None, now: float) -> int | None:
        if (tenant, workflow_id) not in self._executions:
            raise WorkflowNotFoundError(f"no execution {workflow_id!r} in tenant {tenant!r}",
                                        workflow_id=workflow_id, tenant=tenant)
        seq = self._append(tenant, workflow_id, event, dedup, now)
        if seq is not None:
            self.wakeup.notify()
        return seq

    def _append(self, tenant: str, workflow_id: str, event: Event, dedup: str | None,
                now: float, run_id: str | None = None) -> int | None:
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
        self._histories[run].append(replace(event, seq=seq, time=now))
        self._executions[key] = replace(record, last_seq=seq, updated_at=now)
        lease = self._wf_tasks.get(key)
        if lease is None:
            self._wf_tasks[key] = _Lease(now, dispatched_at=now)
        else:
            lease.visible_at, lease.dispatched_at = min(lease.visible_at, now), now
        return seq

    # ---- workflow tasks -----------------------------------------------------------------

    async def commit_workflow_task(self, task: WorkflowTask, owner: str, expected_seq: int,
                                   events: list[Event], *, actions: list[ActionTask],
                                   timers: list[TimerRecord], cancelled_timers: list[int],
                                   update: ExecutionUpdate, now: float,
                                   cancelled_actions: Sequence[int] = (),
                                   starts: Sequence[Start] = (),
                                   signals: Sequence[Signal] = (),
                                   replies: Sequence[Reply] = ()) -> bool:
        key = (task.tenant, task.workflow_id)
        record = self._executions.get(key)
        lease = self._wf_tasks.get(key)
        if record is None or record.last_seq != expected_seq - 1 or lease is None \
                or lease.owner != owner:
            return False
        run = (*key, record.run_id)
        self._histories[run].extend(events)
        del self._wf_tasks[key]
        for action in actions:
            self._actions[(*run, action.cmd)] = (action, _Lease(action.visible_at, dispatched_at=now))
        for timer in timers:
            self._timers[(*run, timer.cmd)] = timer
        for cmd in cancelled_timers:
            self._timers.pop((*run, cmd), None)
        for cmd in cancelled_actions:
            self._actions.pop((*run, cmd), None)
        if update.status in TERMINAL_STATUSES:
            self._drop_run_work(run)
        self._executions[key] = replace(
            record, last_seq=expected_seq + len(events) - 1, updated_at=now, status=update.status,
            state=update.state, data=update.data, result=update.result, error=update.error,
            task_error=None)
        for start in starts:
            self._start(key, start, now)
        for signal in signals:
            self._append(signal.tenant, signal.workflow_id, signal.event, signal.dedup, now,
                         signal.run_id)
        if actions or timers or starts or signals:
            self.wakeup.notify()
        if update.status in TERMINAL_STATUSES:
            self.wakeup.ended(*key, Outcome.of(record.workflow, update))
        self._answer(key, replies)
        return True

    def _drop_run_work(self, run: tuple[str, str, str]) -> None:
        for k in [k for k in self._actions if k[:3] == run]:
            del self._actions[k]
        for k in [k for k in self._timers if k[:3] == run]:
            del self._timers[k]

    def _start(self, committer: _Key, start: Start, now: float) -> None:
        """A commit's start: the committer's next run, or a new execution (see ``Store``)."""
        started = start.started
        key = (started.tenant, started.workflow_id)
        if key == committer:
            record = self._executions[key]
            self._drop_run_work((*key, record.run_id))
            self._executions[key] = replace(
                record, run_id=started.run_id, workflow=started.workflow,
                version=started.version, status="running", updated_at=now, last_seq=1,
                state=None, data={}, result=None, error=None, task_error=None)
            self._begin_run(record, started, now)
            return
        _, created = self._create(started, now)
        feedback = start.on_started if created else start.on_exists
        if feedback is not None:
            self._append(*committer, feedback, None, now)

    async def claim_workflow_tasks(self, workflows: Collection[str], owner: str, *,
                                   lease: float, now: float, limit: int) -> list[WorkflowTask]:
        claimed: list[WorkflowTask] = []
        for key in self._wf_tasks:
            if len(claimed) >= limit:
                break
            task = self._claim_workflow(key, workflows, owner, lease, now)
            if task is not None:
                claimed.append(task)
        return claimed

    def _claim_workflow(self, key: _Key, workflows: Collection[str], owner: str, lease: float,
                        now: float) -> WorkflowTask | None:
        held = self._wf_tasks.get(key)
        record = self._executions.get(key)
        if held is None or record is None or record.workflow not in workflows \
                or not held.claimable(now):
            return None
        held.owner, held.until = owner, now + lease
        held.attempt += 1
        return WorkflowTask(*key, record.workflow, held.attempt, requested=held.requested)

    async def release_workflow_task(self, task: WorkflowTask, owner: str, *, delay: float,
                                    error: str | None, now: float) -> None:
        key = (task.tenant, task.workflow_id)
        held = self._wf_tasks.get(key)
        if held is not None and held.owner == owner:
            held.owner, held.visible_at, held.dispatched_at = None, now + delay, 0.0
            if error is not None:
                self._executions[key] = replace(self._executions[key], task_error=error)

    # ---- action tasks -------------------------------------------------------------------

    async def claim_action_tasks(self, actions: Collection[str], owner: str, *, lease: float,
                                 now: float, limit: int) -> list[ActionTask]:
        claimed: list[ActionTask] = []
        for key in self._actions:
            if len(claimed) >= limit:
                break
            task = self._claim_action(key, actions, owner, lease, now)
            if task is not None:
                claimed.append(task)
        return claimed

    def _claim_action(self, key: tuple[str, str, str, int], actions: Collection[str], owner: str,
                      lease: float, now: float) -> ActionTask | None:
        entry = self._actions.get(key)
        if entry is None or entry[0].name not in actions or not entry[1].claimable(now):
            return None
        task, held = entry
        if held.owner is not None:  # its lease expired: the worker died mid-attempt
            task = replace(task, attempt=task.attempt + 1)
            self._actions[key] = (task, held)
        held.owner, held.until = owner, now + lease
        return task

    async def claim_refs(self, refs: Sequence[TaskRef], owner: str, *, workflows: Collection[str],
                         actions: Collection[str], lease: float, now: float,
                         history_after: Callable[[str, str], int] | None = None,
                         ) -> tuple[list[WorkflowTask], list[ActionTask]]:
        claimed_workflows, claimed_actions = [], []
        for ref in refs:
            if ref.kind == "w":
                wf = self._claim_workflow((ref.tenant, ref.workflow_id), workflows, owner, lease, now)
                if wf is not None:
                    claimed_workflows.append(wf)
            else:
                key = (ref.tenant, ref.workflow_id, ref.run_id, ref.cmd)
                action = self._claim_action(key, actions, owner, lease, now)
                if action is not None:
                    claimed_actions.append(action)
        return claimed_workflows, claimed_actions

    async def dispatch_due(self, *, now: float, older_than: float, limit: int) -> list[TaskRef]:
        refs: list[TaskRef] = []
        for key, held in self._wf_tasks.items():
            if len(refs) < limit and held.claimable(now) and held.dispatched_at <= now - older_than:
                held.dispatched_at = now
                refs.append(workflow_ref(*key))
        for task, held in self._actions.values():
            if len(refs) < limit and held.claimable(now) and held.dispatched_at <= now - older_than:
                held.dispatched_at = now
                refs.append(action_ref(task))
        return refs

    def _held(self, task: ActionTask, owner: str) -> _Lease | None:
        entry = self._actions.get((task.tenant, task.workflow_id, task.run_id, task.cmd))
        if entry is None or entry[1].owner != owner:
            return None
        return entry[1]

    async def extend_action_lease(self, task: ActionTask, owner: str, *, lease: float,
                                  now: float) -> bool:
        held = self._held(task, owner)
        if held is None:
            return False
        held.until = now + lease
        return True

    async def complete_action_task(self, task: ActionTask, event: Event, *, now: float) -> bool:
        self._actions.pop((task.tenant, task.workflow_id, task.run_id, task.cmd), None)
        seq = self._append(task.tenant, task.workflow_id, event, f"a{task.run_id}/{task.cmd}",
                           now, task.run_id)
        if seq is not None:
            self.wakeup.notify()
        return seq is not None

    async def retry_action_task(self, task: ActionTask, owner: str, *, visible_at: float,
                                error: str, now: float) -> None:
        key = (task.tenant, task.workflow_id, task.run_id, task.cmd)
        if self._held(task, owner) is None:
            return
        retried = replace(task, attempt=task.attempt + 1, visible_at=visible_at, last_error=error)
        self._actions[key] = (retried, _Lease(visible_at))  # dispatched again once due

    # ---- requests -----------------------------------------------------------------------

    async def submit_request(self, request: Request, *, now: float) -> tuple[Request | None, bool]:
        key = (request.tenant, request.workflow_id)
        record = self._executions.get(key)
        if record is None:
            raise WorkflowNotFoundError(f"no execution {request.workflow_id!r} in tenant "
                                        f"{request.tenant!r}", workflow_id=request.workflow_id,
                                        tenant=request.tenant)
        requests = self._requests.setdefault(key, {})
        stored = requests.get(request.id)
        if stored is None or stored.status == "rejected":  # a rejected update is tried again
            if request.kind == "update" and record.status in TERMINAL_STATUSES:
                return None, False
            stored = replace(request, created_at=now, status="pending", result=None, error=None)
            requests[request.id] = stored
        if stored.status != "pending":
            return stored, False
        self._request_task(key, now)
        return stored, True

    def _request_task(self, key: _Key, now: float) -> None:
        lease = self._wf_tasks.get(key)
        if lease is None:
            self._wf_tasks[key] = _Lease(now, dispatched_at=now, requested=True)
        else:
            lease.visible_at, lease.dispatched_at = min(lease.visible_at, now), now
            lease.requested = True
        self.wakeup.notify()

    async def get_request(self, tenant: str, workflow_id: str, request_id: str) -> Request | None:
        return self._requests.get((tenant, workflow_id), {}).get(request_id)

    async def rearm_request(self, tenant: str, workflow_id: str, request_id: str, *,
                            now: float) -> bool:
        key = (tenant, workflow_id)
        request = self._requests.get(key, {}).get(request_id)
        if request is None or request.status != "pending" or key in self._wf_tasks:
            return False
        self._request_task(key, now)
        return True

    async def pending_requests(self, tenant: str, workflow_id: str) -> list[Request]:
        pending = [r for r in self._requests.get((tenant, workflow_id), {}).values()
                   if r.status == "pending"]
        return sorted(pending, key=lambda r: (r.created_at, r.id))

    async def answer_requests(self, tenant: str, workflow_id: str, replies: Sequence[Reply], *,
                              now: float) -> None:
        self._answer((tenant, workflow_id), replies)

    def _answer(self, key: _Key, replies: Sequence[Reply]) -> None:
        requests = self._requests.get(key, {})
        for reply in replies:
            request = requests.get(reply.id)
            if request is None or request.status in FINISHED_REQUESTS:
                continue
            requests[reply.id] = replace(request, status=reply.status, result=reply.result,
                                         error=reply.error)
            if reply.status in FINISHED_REQUESTS:
                self.wakeup.replied(*key, reply.id)

    async def forget_request(self, tenant: str, workflow_id: str, request_id: str) -> None:
        self._requests.get((tenant, workflow_id), {}).pop(request_id, None)

    # ---- timers and introspection -------------------------------------------------------

    async def fire_due_timers(self, *, now: float, limit: int) -> list[TaskRef]:
        due = sorted((t for t in self._timers.values() if t.fire_at <= now),
                     key=lambda t: t.fire_at)[:limit]
        for timer in due:
            del self._timers[(timer.tenant, timer.workflow_id, timer.run_id, timer.cmd)]
            await self.append_input(timer.tenant, timer.workflow_id, TimerFired(0, now, timer.cmd),
                                    dedup=f"t{timer.run_id}/{timer.cmd}", now=now)
        return [workflow_ref(t.tenant, t.workflow_id) for t in due]

    async def save_snapshot(self, snapshot: Snapshot, *, keep: int) -> None:
        run = (snapshot.tenant, snapshot.workflow_id, snapshot.run_id)
        kept = [s for s in self._snapshots.get(run, []) if s.seq != snapshot.seq] + [snapshot]
        kept.sort(key=lambda s: s.seq)
        self._snapshots[run] = kept[-keep:]

    async def find_snapshot(self, tenant: str, workflow_id: str, run_id: str, *,
                            seq: int | None = None, time: float | None = None) -> Snapshot | None:
        for snapshot in reversed(self._snapshots.get((tenant, workflow_id, run_id), [])):
            if (seq is None or snapshot.seq <= seq) and (time is None or snapshot.time <= time):
                return snapshot
        return None

    async def pending_work(self, tenant: str, workflow_id: str) -> tuple[list[ActionTask], list[TimerRecord]]:
        actions = [t for t, _ in self._actions.values()
                   if t.tenant == tenant and t.workflow_id == workflow_id]
        timers = [t for t in self._timers.values()
                  if t.tenant == tenant and t.workflow_id == workflow_id]
        return sorted(actions, key=lambda t: t.cmd), sorted(timers, key=lambda t: t.cmd)

    async def next_wakeup(self, *, now: float) -> float | None:
        times = [t.fire_at for t in self._timers.values()]
        times += [held.visible_at if held.owner is None else held.until
                  for _, held in self._actions.values()]
        times += [held.visible_at if held.owner is None else held.until
                  for held in self._wf_tasks.values()]
        times += self._schedule_checks()
        return min(times, default=None)

    async def run_action_transaction(self, task: ActionTask, body: Callable[[Any], Any], *,
                                     isolation: str, now: float) -> bool:
        raise DatabaseActionError(
            f"database action {task.name!r} needs a store with transactions: the memory store "
            "has none; use sqlite:///... or postgresql://...", action=task.name,
            reason="no transactions")

    async def close(self) -> None:
        pass
