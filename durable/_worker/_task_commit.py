"""What one workflow task writes (``TaskCommit``): its events, and the work they create."""

from __future__ import annotations

from typing import Callable

from msgspec.structs import replace

from .._history import (
    ActionCompleted, ActionFailed, CancelAction, CancelChild, CancelExternal, CancelTimer,
    Command, CompleteUpdate, Event, ScheduleAction, SignalExternal, StartChild, StartTimer,
    TaskCompleted, UpdateAccepted,
)
from .._options import with_deadline
from .._replay import WorkflowInstance
from .._stores import (
    ActionTask, ExecutionUpdate, Reply, Request, Settled, Signal, Start, TaskRef, TimerRecord,
    WorkflowCommit, WorkflowTask, action_ref,
)
from ._effects import child_cancel, child_start, effect_refs, ending, external_signal
from ._requests import completion_reply

__all__ = ["TaskCommit"]


class TaskCommit:
    """What one workflow task writes: events with dense seq, and the work they create.

    With inline actions a task can hold several batches: inputs, ``TaskCompleted``, commands,
    then the inline outcomes as the next batch's inputs, and so on.
    """

    def __init__(self, task: WorkflowTask, run_id: str, seq: int, priority: int = 0,
                 fairness_key: str | None = None) -> None:
        self.task = task
        self.run_id = run_id
        self.priority = priority  # the run's: its actions' unless a call gives another
        self.fairness_key = fairness_key
        self.expected_seq = seq + 1  # the seq of its first event
        self.seq = seq  # the last seq written or to be written
        self.events: list[Event] = []
        self.actions: dict[int, ActionTask] = {}
        self.replies: list[Reply] = []  # answers to requests, written with the commit
        self._timers: dict[int, TimerRecord] = {}
        self._cancelled: list[int] = []
        self.cancelled_actions: list[int] = []
        self.starts: list[Start] = []
        self.signals: list[Signal] = []
        self.boundary: tuple[int, float] | None = None  # (seq, time) where the last batch ended
        self.leased: list[ActionTask] = []  # new actions created leased to this worker (eager)
        self.measured = 0  # how many of ``events`` the instance's history size has seen

    def _event(self, make: Callable[[int], Event]) -> Event:
        self.seq += 1
        event: Event = make(self.seq)
        self.events.append(event)
        return event

    def add(self, commands: list[Command], time: float, now: float,
            inline: Callable[[ActionTask], bool],
            suspended_at: str | None = None) -> list[ActionTask]:
        """Record one activation, run at workflow time ``time`` (its events' time) when the
        worker's clock read ``now`` (the clock its new work is due on); return the new
        actions to run inline."""
        self._event(lambda seq: TaskCompleted(seq, time, suspended_at))
        to_run: list[ActionTask] = []
        for command in commands:
            self._event(lambda seq: command.to_event(seq, time))
            if type(command) is ScheduleAction:
                options = command.options
                priority = self.priority if options is None or options.priority is None \
                    else options.priority
                action = ActionTask(self.task.tenant, self.task.workflow_id, self.run_id,
                                    command.cmd, command.name, command.args, command.kwargs, 1, now,
                                    queue=command.queue, options=with_deadline(options, now),
                                    priority=priority, fairness_key=self.fairness_key)
                self.actions[command.cmd] = action
                if inline(action):
                    to_run.append(action)
            elif type(command) is StartTimer:
                # Due on this worker's clock, from when the batch ran (not from the workflow's
                # time, which may be ahead of it): the store moves it onto its own clock.
                self._timers[command.cmd] = TimerRecord(self.task.tenant, self.task.workflow_id,
                                                        self.run_id, command.cmd,
                                                        now + command.duration)
            elif type(command) is CancelTimer and self._timers.pop(command.cmd, None) is None:
                self._cancelled.append(command.cmd)  # started by an earlier task
            elif type(command) is CancelAction and self.actions.pop(command.cmd, None) is None:
                self.cancelled_actions.append(command.cmd)  # scheduled by an earlier task
            elif type(command) is StartChild:
                self.starts.append(child_start(self.task, self.run_id, command))
            elif type(command) is CancelChild:
                self.signals.append(child_cancel(self.task, command))
            elif type(command) is SignalExternal or type(command) is CancelExternal:
                self.signals.append(external_signal(self.task, self.run_id, command))
            elif type(command) is CompleteUpdate:
                self.replies.append(completion_reply(command))
        self.boundary = (self.seq, time)
        return to_run

    def accept(self, updates: list[Request], now: float) -> list[Event]:
        """Record accepted updates as inputs; they are the next batch."""
        return [self._event(lambda seq: UpdateAccepted(seq, now, r.id, r.name, r.args))
                for r in updates]

    def record_inline(self, outcomes: list[ActionCompleted | ActionFailed | ActionTask],
                      now: float) -> list[Event]:
        """Outcomes become inputs; an attempt that failed with retries left stays a task."""
        inputs: list[Event] = []
        for outcome in outcomes:
            if isinstance(outcome, ActionTask):
                self.actions[outcome.cmd] = outcome
            else:
                del self.actions[outcome.cmd]
                done: ActionCompleted | ActionFailed = outcome
                inputs.append(self._event(lambda seq: replace(done, seq=seq, time=now)))
        return inputs

    def end(self, instance: WorkflowInstance) -> None:
        """The run ended: add what its end does elsewhere (see ``_effects.ending``)."""
        starts, signals = ending(instance)
        self.starts += starts
        self.signals += signals

    def refs(self) -> list[TaskRef]:
        """Hints for the tasks this commit made runnable, to publish once it is committed."""
        leased = {a.cmd for a in self.leased}
        refs = [action_ref(a) for a in self.actions.values() if a.cmd not in leased]
        if self.starts or self.signals:
            refs += effect_refs(self.task.tenant, self.task.workflow_id, self.starts,
                                self.signals)
        return refs

    def settles_here(self) -> bool:
        """Whether the run waits only for the actions this commit leases to its worker
        (their outcomes settle there with the next task: no hint to route to it)."""
        return bool(self.leased) and len(self.leased) == len(self.actions) \
            and not self._timers and not self.starts

    def measure(self, instance: WorkflowInstance) -> None:
        """Hand the events recorded since the last call to the instance's history size."""
        if self.measured < len(self.events):
            instance.history_size.recorded(self.events[self.measured:])
            self.measured = len(self.events)

    def record(self, owner: str, update: ExecutionUpdate, now: float,
               lease_until: float = 0.0, settled: Settled | None = None) -> WorkflowCommit:
        """The commit as the store writes it, by ``owner`` (the task's lease holder); the
        ``leased`` actions are created leased to it until ``lease_until``; ``settled``: the
        action outcome it records first (then the task has no row of its own)."""
        return WorkflowCommit(owner, self.expected_seq, self.events, update, now,
                              list(self.actions.values()), list(self._timers.values()),
                              self._cancelled, self.cancelled_actions, self.starts,
                              self.signals, self.replies, [a.cmd for a in self.leased],
                              lease_until, settled)
