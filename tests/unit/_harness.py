"""Drive a workflow instance without a store: a tiny in-memory stand-in for the worker loop."""

from __future__ import annotations

from typing import Any, Callable

from durable._definitions import workflow_definition
from durable._history import (
    ActionCompleted, ActionFailed, ErrorInfo, Event, ScheduleAction, StartTimer, TaskCompleted,
    TimerFired, WorkflowStarted,
)
from durable._replay import WorkflowInstance, replay


class Harness:
    """Runs a workflow live, answering actions with ``actions[name](*args)``, recording history."""

    def __init__(self, wf: Any, *args: Any, actions: dict[str, Callable[..., Any]] | None = None,
                 start: float = 1_000.0) -> None:
        self.defn = workflow_definition(wf)
        self.actions = actions or {}
        self.time = start
        self.started = WorkflowStarted(1, start, self.defn.name, self.defn.version, "wf-1", "run-1",
                                       "t", list(args))
        self.history: list[Event] = [self.started]
        self.instance = WorkflowInstance(self.defn, self.started)
        self.pending: list[Event] = [self.started]
        self.timers: dict[int, float] = {}
        self.trace: list[list[Any]] = []

    def _append(self, make: Callable[[int], Event]) -> Event:
        event = make(len(self.history) + 1)
        self.history.append(event)
        return event

    def activate(self) -> list[Any]:
        """Run the pending inputs as one batch; record TaskCompleted and the commands."""
        activation = self.instance.activate(self.pending, self.time)
        assert activation.error is None, activation.error
        self.pending = []
        self._append(lambda s: TaskCompleted(s, self.time))
        for command in activation.commands:
            self._append(lambda s: command.to_event(s, self.time))
            if isinstance(command, StartTimer):
                self.timers[command.cmd] = command.fire_at
        self.trace.append(activation.commands)
        return activation.commands

    def give(self, make: Callable[[int, float], Event]) -> None:
        """Append an input (seq, time) -> event to history and to the next batch."""
        self.pending.append(self._append(lambda s: make(s, self.time)))

    def complete_actions(self, commands: list[Any]) -> None:
        for command in commands:
            if isinstance(command, ScheduleAction):
                try:
                    result = self.actions[command.name](*command.args, **command.kwargs)
                except Exception as exc:  # noqa: BLE001
                    error = ErrorInfo(type(exc).__name__, str(exc))
                    self.give(lambda s, t, c=command.cmd: ActionFailed(s, t, c, error, 3))
                else:
                    self.give(lambda s, t, c=command.cmd, r=result: ActionCompleted(s, t, c, r))

    def fire_next_timer(self) -> None:
        cmd, fire_at = min(self.timers.items(), key=lambda kv: kv[1])
        del self.timers[cmd]
        self.time = max(self.time, fire_at)
        self.give(lambda s, t: TimerFired(s, t, cmd))

    def run(self, max_steps: int = 1000, fire_timers: bool = True) -> Any:
        """Activate until done, completing actions at once and firing timers when idle."""
        for _ in range(max_steps):
            commands = self.activate()
            if self.instance.done:
                return self.instance.outcome
            self.complete_actions(commands)
            if not self.pending:
                if not self.timers or not fire_timers:
                    return None  # waits for an external event
                self.fire_next_timer()
        raise AssertionError("workflow did not finish")


def replay_fresh(harness: Harness) -> tuple[WorkflowInstance, Any]:
    """Replay the harness's history on a new instance; return it and the failed activation."""
    instance = WorkflowInstance(harness.defn, harness.started)
    rest, failed = replay(instance, harness.history)
    return instance, failed
