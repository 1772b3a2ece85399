"""The memory store's task claiming (``TaskStore``): leases, commits, action outcomes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable
from typing import Any, Callable, ClassVar, Collection, Sequence, TypeVar

from msgspec.structs import replace

from ..._history import Event
from ..._queues import route
from ...errors import DatabaseActionError
from .._commit import Committer
from .._records import (
    TERMINAL_STATUSES, ActionTask, Reply, Start, TaskRef, WorkflowCommit, WorkflowTask,
    action_dedup,
)
from ._state import ActionKey, Key, Lease, MemoryState

__all__ = ["MemoryTasks", "claim_order"]

K = TypeVar("K", bound=tuple[Any, ...])


class MemoryTasks(Committer, MemoryState):
    """Workflow and action tasks, leased in the state's dicts."""

    transaction_driver: ClassVar[str | None] = None  # no transactions: no database actions

    # ---- workflow tasks -----------------------------------------------------------------

    def _holds(self, key: Key, owner: str, expected_seq: int) -> bool:
        """Whether ``owner`` holds the task and the history ends at ``expected_seq - 1``."""
        record = self._executions.get(key)
        lease = self._wf_tasks.get(key)
        return record is not None and record.last_seq == expected_seq - 1 \
            and lease is not None and lease.owner == owner

    async def _commit(self, task: WorkflowTask, commit: WorkflowCommit) -> bool:
        key = (task.tenant, task.workflow_id)
        if commit.settled is not None:
            if not self._settle(key, commit):
                return False
        elif not self._holds(key, commit.owner, commit.expected_seq):
            return False
        record, now, update = self._executions[key], commit.now, commit.update
        run = (*key, record.run_id)
        if commit.events:
            self._write(run, commit.events)
        self._wf_tasks.pop(key, None)  # none when it settles an outcome
        for action in commit.actions:
            held = Lease(action.visible_at, dispatched_at=now)
            if action.cmd in commit.leased:
                held.owner, held.until = commit.owner, commit.lease_until
            self._actions[(*run, action.cmd)] = (action, held)
        for timer in commit.timers:
            self._timers[(*run, timer.cmd)] = timer
        for cmd in commit.cancelled_timers:
            self._timers.pop((*run, cmd), None)
        for cmd in commit.cancelled_actions:
            self._actions.pop((*run, cmd), None)
        if update.status in TERMINAL_STATUSES:
            self._drop_run_work(run)
        self._executions[key] = replace(
            record, last_seq=commit.expected_seq + len(commit.events) - 1, updated_at=now,
            status=update.status, state=update.state, data=update.data, result=update.result,
            error=update.error, task_error=None)
        for start in commit.starts:
            self._start(key, start, now)
        for signal in commit.signals:
            self._append(signal.tenant, signal.workflow_id, signal.event, signal.dedup, now,
                         signal.run_id)
        self._answer(key, commit.replies)
        return True

    def _settle(self, key: Key, commit: WorkflowCommit) -> bool:
        """Record the outcome the commit settles, if ``Settled``'s conditions hold; whether
        they did. The commit then needs no task of its own."""
        assert commit.settled is not None
        action, event = commit.settled.task, commit.settled.event
        record, run = self._executions.get(key), (*key, action.run_id)
        held = self._actions.get((*run, action.cmd))
        dedup = action_dedup(action)
        if record is None or record.run_id != action.run_id \
                or record.status in TERMINAL_STATUSES or record.last_seq != event.seq - 1 \
                or key in self._wf_tasks or held is None or held[1].owner != commit.owner \
                or dedup in self._dedup[run] or commit.expected_seq != event.seq + 1:
            return False
        self._dedup[run].add(dedup)
        self._write(run, [event])
        del self._actions[(*run, action.cmd)]
        self._executions[key] = replace(record, last_seq=event.seq)
        return True

    def _start(self, committer: Key, start: Start, now: float) -> None:
        """A commit's start: the committer's next run, or a new execution (see ``TaskStore``)."""
        started = start.started
        key = (started.tenant, started.workflow_id)
        if key == committer:
            record = self._executions[key]
            self._drop_run_work((*key, record.run_id))
            self._executions[key] = replace(
                record, run_id=started.run_id, workflow=started.workflow, queue=started.queue,
                version=started.version, status="running", updated_at=now, last_seq=1,
                state=None, data={}, result=None, error=None, task_error=None)
            self._begin_run(record, started, now)
            return
        _, created = self._create(started, now)
        feedback = start.on_started if created else start.on_exists
        if feedback is not None:
            self._append(*committer, feedback, None, now)

    async def _finish(self, task: WorkflowTask, owner: str, expected_seq: int,
                      replies: Sequence[Reply], now: float) -> bool:
        key = (task.tenant, task.workflow_id)
        if not self._holds(key, owner, expected_seq):
            return False
        del self._wf_tasks[key]
        self._answer(key, replies)
        return True

    async def claim_workflow_tasks(self, workflows: Collection[str], owner: str, *,
                                   lease: float, now: float, limit: int) -> list[WorkflowTask]:
        """Lease up to ``limit`` runnable workflow tasks of the named workflows."""
        claimed: list[WorkflowTask] = []
        for key in self._workflow_order(workflows, now):
            if len(claimed) >= limit:
                break
            task = self._claim_workflow(key, workflows, owner, lease, now)
            if task is not None:
                claimed.append(task)
        return claimed

    def _workflow_order(self, workflows: Collection[str], now: float) -> list[Key]:
        """The claimable workflow tasks of these routes, in claim order (``claim_order``)."""
        entries: list[tuple[Key, int, tuple[str, str | None], float]] = []
        running: Counter[Hashable] = Counter()
        for key, held in self._wf_tasks.items():
            record = self._executions.get(key)
            if record is None:
                continue
            partition = (key[0], record.fairness_key)
            if held.claimable(now):
                if route(record.workflow, record.queue) in workflows:
                    entries.append((key, record.priority, partition, held.due))
            elif held.owner is not None:
                running[partition] += 1
        return claim_order(entries, running)

    def _claim_workflow(self, key: Key, workflows: Collection[str], owner: str, lease: float,
                        now: float) -> WorkflowTask | None:
        held = self._wf_tasks.get(key)
        record = self._executions.get(key)
        if held is None or record is None or not held.claimable(now) \
                or route(record.workflow, record.queue) not in workflows:
            return None
        held.owner, held.until = owner, now + lease
        held.attempt += 1
        return WorkflowTask(*key, record.workflow, held.attempt, requested=held.requested,
                            queue=record.queue)

    async def release_workflow_task(self, task: WorkflowTask, owner: str, *, delay: float,
                                    error: str | None, now: float) -> None:
        """Give a leased workflow task back, to be retried after ``delay`` seconds."""
        key = (task.tenant, task.workflow_id)
        held = self._wf_tasks.get(key)
        if held is not None and held.owner == owner:
            held.owner, held.visible_at, held.dispatched_at = None, now + delay, 0.0
            if error is not None:
                self._executions[key] = replace(self._executions[key], task_error=error)

    # ---- action tasks -------------------------------------------------------------------

    async def claim_action_tasks(self, actions: Collection[str], owner: str, *, lease: float,
                                 now: float, limit: int) -> list[ActionTask]:
        """Lease up to ``limit`` due action tasks of the named actions."""
        claimed: list[ActionTask] = []
        for key in self._action_order(self._actions, actions, now):
            if len(claimed) >= limit:
                break
            task = self._claim_action(key, actions, owner, lease, now)
            if task is not None:
                claimed.append(task)
        return claimed

    def _action_order(self, keys: Iterable[ActionKey], actions: Collection[str],
                      now: float) -> list[ActionKey]:
        """Those of ``keys`` that are claimable tasks of these routes, in claim order."""
        entries: list[tuple[ActionKey, int, tuple[str, str | None], float]] = []
        for key in keys:
            task, held = self._actions[key]
            if held.claimable(now) and route(task.name, task.queue) in actions:
                entries.append((key, task.priority, (key[0], task.fairness_key), held.due))
        running: Counter[Hashable] = Counter(  # every route's, as the SQL stores count them
            (key[0], task.fairness_key) for key, (task, held) in self._actions.items()
            if held.owner is not None and not held.claimable(now))
        return claim_order(entries, running)

    def _claim_action(self, key: ActionKey, actions: Collection[str], owner: str, lease: float,
                      now: float) -> ActionTask | None:
        entry = self._actions.get(key)
        if entry is None or not entry[1].claimable(now) \
                or route(entry[0].name, entry[0].queue) not in actions:
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
        """Lease the tasks these hints name if they are claimable now and hosted here."""
        claimed_workflows: list[WorkflowTask] = []
        claimed_actions: list[ActionTask] = []
        for ref in refs:
            if ref.kind == "w":
                key = (ref.tenant, ref.workflow_id)
                workflow = self._claim_workflow(key, workflows, owner, lease, now)
                if workflow is not None:
                    claimed_workflows.append(workflow)
            else:
                action = self._claim_action((ref.tenant, ref.workflow_id, ref.run_id, ref.cmd),
                                            actions, owner, lease, now)
                if action is not None:
                    claimed_actions.append(action)
        return claimed_workflows, claimed_actions

    def _held(self, task: ActionTask, owner: str) -> Lease | None:
        entry = self._actions.get((task.tenant, task.workflow_id, task.run_id, task.cmd))
        if entry is None or entry[1].owner != owner:
            return None
        return entry[1]

    async def extend_action_lease(self, task: ActionTask, owner: str, *, lease: float,
                                  now: float) -> bool:
        """Keep a running action's lease alive; False if the lease was lost."""
        held = self._held(task, owner)
        if held is None:
            return False
        held.until = now + lease
        return True

    async def hand_off_action(self, task: ActionTask, owner: str, holder: str, *,
                              until: float) -> bool:
        """Lease the task to ``holder`` until ``until``, if ``owner`` holds it."""
        held = self._held(task, owner)
        if held is None:
            return False
        held.owner, held.until = holder, until
        return True

    async def complete_action_task(self, task: ActionTask, event: Event, *, now: float) -> bool:
        """Record an action's outcome (first completion wins) and drop its task."""
        self._actions.pop((task.tenant, task.workflow_id, task.run_id, task.cmd), None)
        seq = self._append(task.tenant, task.workflow_id, event, action_dedup(task),
                           now, task.run_id)
        if seq is not None:
            self.wakeup.notify()
        return seq is not None

    async def retry_action_task(self, task: ActionTask, owner: str, *, visible_at: float,
                                error: str, now: float) -> None:
        """Schedule the next attempt of a failed action at ``visible_at``."""
        key = (task.tenant, task.workflow_id, task.run_id, task.cmd)
        if self._held(task, owner) is None:
            return
        # as the SQL stores' (columns of the stored task): a caller may know only its key
        retried = replace(self._actions[key][0], attempt=task.attempt + 1, visible_at=visible_at,
                          last_error=error)
        self._actions[key] = (retried, Lease(visible_at))  # dispatched again once due

    async def run_action_transaction(self, task: ActionTask, body: Callable[[Any], Any], *,
                                     isolation: str, now: float) -> bool:
        """Refused: the memory store has no transactions (``DatabaseActionError``)."""
        raise DatabaseActionError(
            f"database action {task.name!r} needs a store with transactions: the memory store "
            "has none; use sqlite:///... or postgresql://...", action=task.name,
            reason="no transactions")


def claim_order(entries: Iterable[tuple[K, int, Hashable, float]],
                running: Counter[Hashable]) -> list[K]:
    """Keys of (key, priority, partition, due) entries in the order claims take them, as the
    SQL stores' claims do: higher priority first; within a priority, in turns across
    partitions (tenant, fairness key): a partition's k-th earliest due has turn k plus the
    number of its tasks ``running`` (leased) now; within a turn, earliest due first."""
    groups: dict[tuple[int, Hashable], list[tuple[float, K]]] = {}
    for key, priority, partition, due in entries:
        groups.setdefault((priority, partition), []).append((due, key))
    ranked: list[tuple[int, int, float, K]] = []
    for (priority, partition), items in groups.items():
        items.sort(key=lambda item: item[0])
        ranked += [(-priority, running[partition] + turn, due, key)
                   for turn, (due, key) in enumerate(items)]
    ranked.sort(key=lambda item: item[:3])
    return [item[3] for item in ranked]
