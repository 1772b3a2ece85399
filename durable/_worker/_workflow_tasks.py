"""Running one workflow task: load (or reuse) the instance, activate it, commit atomically."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Callable

from msgspec.structs import replace

from .._definitions import ActionDefinition, WorkflowDefinition
from .._history import (
    INPUT_TYPES, ActionCompleted, ActionFailed, CancelAction, CancelChild, CancelTimer,
    CancelWorkflow, Command, CompleteWorkflow, Event, FailWorkflow, ScheduleAction, StartChild,
    StartTimer, TaskCompleted, WorkflowStarted,
)
from .._replay import WorkflowInstance, replay
from .._stores import (
    ActionTask, ExecutionUpdate, Signal, Start, TaskRef, TimerRecord, WorkflowTask, action_ref,
)
from ._effects import child_cancel, child_start, effect_refs, ending
from ..errors import HistoryError, NonDeterminismError, UnknownWorkflowError

if TYPE_CHECKING:
    from .._client import Client
    from ._action_tasks import ActionTaskRunner

__all__ = ["InstanceCache", "WorkflowTaskRunner"]

logger = logging.getLogger("durable.worker")

_INPUTS = frozenset(INPUT_TYPES)
_CONFLICT_RETRIES = 5
_INLINE_ROUNDS = 100  # batches one workflow task may run inline before it commits


def _never(action: ActionTask) -> bool:
    return False


def _backoff(attempt: int) -> float:
    return min(2.0 ** (attempt - 1), 60.0)


class _Cached:
    __slots__ = ("instance", "seq", "stuck")

    def __init__(self, instance: WorkflowInstance, seq: int) -> None:
        self.instance = instance
        self.seq = seq
        self.stuck = False  # the dispatcher routes the execution's next tasks to this worker


class InstanceCache:
    """Live instances by (tenant, workflow_id), least recently used evicted first ("sticky")."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[tuple[str, str], _Cached] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def seq_of(self, tenant: str, workflow_id: str) -> int:
        """The seq up to which the cached instance has seen the history (0 if none is cached)."""
        entry = self._items.get((tenant, workflow_id))
        return 0 if entry is None else entry.seq

    def take(self, key: tuple[str, str]) -> _Cached | None:
        """Remove and return the entry (a task owns its instance while it runs)."""
        return self._items.pop(key, None)

    def put(self, key: tuple[str, str], entry: _Cached) -> None:
        """Keep an instance for the execution's next task."""
        if self.capacity <= 0 or entry.instance.done:
            entry.instance.close()
            return
        self._items[key] = entry
        while len(self._items) > self.capacity:
            _, old = self._items.popitem(last=False)
            old.instance.close()

    def clear(self) -> None:
        """Drop every instance."""
        for entry in self._items.values():
            entry.instance.close()
        self._items.clear()


class _Commit:
    """What one workflow task writes: events with dense seq, and the work they create.

    With inline actions a task can hold several batches: inputs, ``TaskCompleted``, commands,
    then the inline outcomes as the next batch's inputs, and so on.
    """

    def __init__(self, task: WorkflowTask, run_id: str, seq: int) -> None:
        self.task = task
        self.run_id = run_id
        self.seq = seq  # the last seq written or to be written
        self.events: list[Event] = []
        self.actions: dict[int, ActionTask] = {}
        self._timers: dict[int, TimerRecord] = {}
        self._cancelled: list[int] = []
        self.cancelled_actions: list[int] = []
        self.starts: list[Start] = []
        self.signals: list[Signal] = []

    def _event(self, make: Any) -> Event:
        self.seq += 1
        event: Event = make(self.seq)
        self.events.append(event)
        return event

    def add(self, commands: list[Command], now: float,
            inline: Callable[[ActionTask], bool]) -> list[ActionTask]:
        """Record one activation; return the new actions to run inline."""
        self._event(lambda seq: TaskCompleted(seq, now))
        to_run = []
        for command in commands:
            self._event(lambda seq: command.to_event(seq, now))
            if type(command) is ScheduleAction:
                action = ActionTask(self.task.tenant, self.task.workflow_id, self.run_id,
                                    command.cmd, command.name, command.args, command.kwargs, 1, now)
                self.actions[command.cmd] = action
                if inline(action):
                    to_run.append(action)
            elif type(command) is StartTimer:
                self._timers[command.cmd] = TimerRecord(self.task.tenant, self.task.workflow_id,
                                                        self.run_id, command.cmd, command.fire_at)
            elif type(command) is CancelTimer and self._timers.pop(command.cmd, None) is None:
                self._cancelled.append(command.cmd)  # started by an earlier task
            elif type(command) is CancelAction and self.actions.pop(command.cmd, None) is None:
                self.cancelled_actions.append(command.cmd)  # scheduled by an earlier task
            elif type(command) is StartChild:
                self.starts.append(child_start(self.task, self.run_id, command))
            elif type(command) is CancelChild:
                self.signals.append(child_cancel(self.task, command))
        return to_run

    def record_inline(self, outcomes: list[ActionCompleted | ActionFailed | ActionTask],
                      now: float) -> list[Event]:
        """Outcomes become inputs; an attempt that failed with retries left stays a task."""
        inputs = []
        for outcome in outcomes:
            if isinstance(outcome, ActionTask):
                self.actions[outcome.cmd] = outcome
            else:
                del self.actions[outcome.cmd]
                inputs.append(self._event(lambda seq: replace(outcome, seq=seq, time=now)))
        return inputs

    def end(self, instance: WorkflowInstance) -> None:
        """The run ended: add what its end does elsewhere (see ``_effects.ending``)."""
        starts, signals = ending(instance)
        self.starts += starts
        self.signals += signals

    def refs(self) -> list[TaskRef]:
        """Hints for the tasks this commit made runnable, to publish once it is committed."""
        refs = [action_ref(a) for a in self.actions.values()]
        if self.starts or self.signals:
            refs += effect_refs(self.task.tenant, self.task.workflow_id, self.starts,
                                self.signals)
        return refs

    def timers(self) -> list[TimerRecord]:
        return list(self._timers.values())

    def cancelled_timers(self) -> list[int]:
        return self._cancelled


def _update(instance: WorkflowInstance) -> ExecutionUpdate:
    last = instance.outcome
    state, data = instance.state, dict(instance.data)
    if type(last) is CompleteWorkflow:
        return ExecutionUpdate("completed", state, data, result=last.result)
    if type(last) is FailWorkflow:
        return ExecutionUpdate("failed", state, data, error=last.error)
    if type(last) is CancelWorkflow:
        return ExecutionUpdate("cancelled", state, data)
    return ExecutionUpdate("running", state, data)


class WorkflowTaskRunner:
    """Turns a claimed workflow task into one atomic commit (or a release with the reason)."""

    def __init__(self, client: Client, owner: str, workflows: dict[str, WorkflowDefinition],
                 actions: dict[str, ActionDefinition], cache: InstanceCache,
                 action_runner: ActionTaskRunner, inline_budget: float) -> None:
        self.store = client.store
        self.client = client
        self.clock = client.clock
        self.owner = owner
        self.workflows = workflows
        self.actions = actions
        self.cache = cache
        self.action_runner = action_runner
        self.inline_budget = inline_budget  # seconds an inline attempt may take; 0 disables

    async def run(self, task: WorkflowTask) -> None:
        """Run the task; conflicts retry from fresh history, failures release it with backoff."""
        key = (task.tenant, task.workflow_id)
        try:
            for _ in range(_CONFLICT_RETRIES):
                if await self._attempt(task, key):
                    return
                task = replace(task, history=None)  # the history moved on: read it afresh
            await self._release(task, "history kept changing; retrying later", delay=0.5)
        except NonDeterminismError as exc:
            logger.error("%s", exc)
            await self._release(task, str(exc), delay=_backoff(task.attempt))
        except Exception as exc:  # the store is down, a bug: give the task back and go on
            logger.exception("workflow task %s/%s failed", *key)
            await self._release(task, f"{type(exc).__name__}: {exc}",
                                delay=_backoff(task.attempt))

    async def _release(self, task: WorkflowTask, error: str, delay: float) -> None:
        self.cache.take((task.tenant, task.workflow_id))
        try:
            await self.store.release_workflow_task(task, self.owner, delay=delay, error=error,
                                                   now=self.clock())
        except Exception:
            logger.exception("could not release workflow task; its lease will expire")

    async def _attempt(self, task: WorkflowTask, key: tuple[str, str]) -> bool:
        entry, inputs = await self._load(task, key)
        commit = _Commit(task, entry.instance.info.run_id, entry.seq)
        for round_ in range(_INLINE_ROUNDS):
            if not inputs:
                break
            now = self.clock()
            activation = entry.instance.activate(inputs, now)
            if activation.error is not None:
                entry.instance.close()
                raise activation.error
            # The last round queues its actions: an inline outcome recorded now would be an
            # input that no workflow task is left to run.
            last = round_ == _INLINE_ROUNDS - 1
            inline = commit.add(activation.commands, now, _never if last else self._inline)
            inputs = [] if entry.instance.done else await self._run_inline(commit, inline)
        if entry.instance.done:
            commit.end(entry.instance)
        if not entry.stuck and not entry.instance.done:
            # Before the commit makes the task's outcome visible, so the next hint follows it.
            entry.stuck = await self._stick(task, keep=True)
        committed = await self.store.commit_workflow_task(
            task, self.owner, entry.seq + 1, commit.events, actions=list(commit.actions.values()),
            timers=commit.timers(), cancelled_timers=commit.cancelled_timers(),
            update=_update(entry.instance), now=self.clock(),
            cancelled_actions=commit.cancelled_actions, starts=commit.starts,
            signals=commit.signals)
        if not committed:
            entry.instance.close()
            return False
        entry.seq += len(commit.events)
        done, stuck = entry.instance.done, entry.stuck
        self.cache.put(key, entry)
        refs = commit.refs()
        if refs:
            await self.client.publish(refs)
        if done and stuck:
            await self._stick(task, keep=False)
        return True

    async def _stick(self, task: WorkflowTask, *, keep: bool) -> bool:
        """Sticky execution: ask for this execution's next tasks (or forget it, once ended)."""
        try:
            await self.client.dispatcher.stick(self.owner, task.tenant, task.workflow_id, keep=keep)
        except Exception:  # without it the next task goes to any worker, which replays
            logger.warning("could not route %s/%s to this worker", task.tenant, task.workflow_id,
                           exc_info=True)
            return False
        return True

    def _inline(self, action: ActionTask) -> bool:
        """Whether this worker runs the action inside the workflow task (a local fast path)."""
        defn = self.actions.get(action.name)
        if self.inline_budget <= 0 or defn is None or defn.inline is False or defn.transaction:
            return False  # a database action commits with its own transaction, not the task's
        return defn.inline is True or (defn.timeout is not None and defn.timeout <= self.inline_budget)

    async def _run_inline(self, commit: _Commit, actions: list[ActionTask]) -> list[Event]:
        """Run first attempts now; their outcomes are the next batch's inputs."""
        if not actions:
            return []
        run = self.action_runner.run_inline
        if len(actions) == 1:  # no gather (and its task) for the common sequential step
            return commit.record_inline([await run(actions[0], self.inline_budget)], self.clock())
        outcomes = await asyncio.gather(*(run(a, self.inline_budget) for a in actions))
        return commit.record_inline(outcomes, self.clock())

    async def _load(self, task: WorkflowTask, key: tuple[str, str]) -> tuple[_Cached, list[Event]]:
        """The instance brought up to date, and the inputs it has not run yet."""
        entry = self.cache.take(key)
        if entry is not None:
            # Its own run's events: if another worker continued the execution as new, the
            # old run shows that worker's commit, and the instance is rebuilt.
            new = await self._history(task, entry.seq, entry.instance.info.run_id)
            if all(type(e) in _INPUTS for e in new):
                entry.seq += len(new)
                return entry, new
            entry.instance.close()  # someone else advanced it: rebuild from history
        events = await self._history(task, 0)
        instance = self._instance(task, events)
        inputs, failed = replay(instance, events)
        if failed is not None:
            instance.close()
            raise failed.error  # type: ignore[misc]
        return _Cached(instance, len(events)), inputs

    async def _history(self, task: WorkflowTask, after_seq: int,
                       run_id: str | None = None) -> list[Event]:
        """The events of run ``run_id`` (default: the current one) after ``after_seq``: those
        the claim brought along, else read."""
        if task.history is not None and task.after_seq <= after_seq and (
                run_id is None or run_id == task.run_id):
            return [e for e in task.history if e.seq > after_seq]
        return await self.store.read_history(task.tenant, task.workflow_id, run_id=run_id,
                                             after_seq=after_seq)

    def _instance(self, task: WorkflowTask, events: list[Event]) -> WorkflowInstance:
        if not events or type(events[0]) is not WorkflowStarted:
            raise HistoryError(f"history of {task.workflow_id!r} does not start with WorkflowStarted")
        started: Any = events[0]
        defn = self.workflows.get(started.workflow)
        if defn is None:
            raise UnknownWorkflowError(f"this worker has no workflow {started.workflow!r}",
                                       name=started.workflow)
        return WorkflowInstance(defn, started, self.actions)
