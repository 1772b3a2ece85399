"""The differential replay check of one program on the engine itself, without a store.

A seeded world plays the worker, the store and the server around one ``FuzzProgram`` run:
it decides which action outcomes, fired timers, child events and external events make up
each batch, so that a run can be repeated input for input. Each workflow task is run three
ways, and the three must agree:

- live: one instance kept from task to task (a worker's sticky cache);
- always replay: a fresh instance rebuilt from the history so far at every task (a worker
  without a cache, ``Environment(always_replay=True)``), which must issue exactly the
  commands the live instance issued;
- ``durable.Replayer`` over the final history, which must end in the live run's outcome,
  state and data.

Live and rebuilt instances hold different objects at different memory addresses, so any
order that depends on addresses (iterating a set of tasks) shows up as a disagreement.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import durable
from durable._definitions import workflow_definition
from durable._history import (
    ActionCompleted, ActionFailed, CancelAction, CancelChild, CancelRequested, CancelTimer,
    ChildCancelled, ChildCompleted, ChildFailed, ChildStarted, Command, CompleteWorkflow,
    ErrorInfo, Event, EventReceived, FailWorkflow, ScheduleAction, StartChild, StartTimer,
    TaskCompleted, TimerFired, WorkflowStarted,
)
from durable._replay import WorkflowInstance, replay
from faults._checks import check_history

from ._program import Program, act_result, fuzz_act, fuzz_program

DEFN = workflow_definition(fuzz_program)
ACTIONS = {fuzz_act.__durable_action__.name: fuzz_act.__durable_action__}  # type: ignore[attr-defined]
START = 1_000.0
MAX_TASKS = 2_000


class Disagreement(AssertionError):
    """The live run, a rebuilt instance or the Replayer disagreed (names the program)."""


@dataclass
class Outcome:
    """What a run ended with: comparable between the three ways and across stores."""

    status: str  # completed | failed | cancelled | suspended
    value: Any  # the result, or the error type and message
    state: str | None
    data: dict[str, Any]
    commands: list[str] = field(default_factory=list)  # command events, kind and name


Make = Callable[[int, float], Event]


@dataclass
class _World:
    """Everything outside the workflow: pending work, due times, what arrives next."""

    rng: random.Random
    now: float = START
    ready: list[_Ready] = field(default_factory=list)  # arrived, not in a batch yet
    timers: dict[int, float] = field(default_factory=dict)
    events: list[tuple[float, Make]] = field(default_factory=list)  # not arrived yet

    def take_batch(self) -> list[Make]:
        """The next batch: some of what is ready (moving time on when nothing is)."""
        if not self.ready:
            self._advance()
        if not self.ready:
            return []
        chosen = {i for i in range(len(self.ready)) if self.rng.random() < 0.6} or {0}
        # The start comes first; timers fire and events arrive in order, and a child starts
        # before it ends: take a prefix of each of those.
        for fifo in ("start", "timer", "event", "child"):
            indexes = [i for i, r in enumerate(self.ready) if r.kind == fifo]
            if fifo == "start" and indexes:
                chosen.add(indexes[0])
            taken = len(chosen.intersection(indexes))
            chosen = chosen.difference(indexes).union(indexes[:taken])
        batch = [self.ready[i].make for i in sorted(chosen)]
        self.ready = [r for i, r in enumerate(self.ready) if i not in chosen]
        return batch

    def drop(self, kind: str, cmd: int) -> None:
        """Forget what is ready of ``kind`` for command ``cmd``."""
        self.ready = [r for r in self.ready if r.kind != kind or r.cmd != cmd]

    def _advance(self) -> None:
        times = list(self.timers.values()) + [t for t, _ in self.events]
        if not times:
            return
        self.now = max(self.now, min(times))
        for cmd, fire_at in sorted(self.timers.items(), key=lambda kv: (kv[1], kv[0])):
            if fire_at <= self.now:
                del self.timers[cmd]
                self.ready.append(_Ready("timer", cmd, lambda s, t, c=cmd: TimerFired(s, t, c)))
        while self.events and self.events[0][0] <= self.now:
            self.ready.append(_Ready("event", 0, self.events.pop(0)[1]))


@dataclass(frozen=True)
class _Ready:
    kind: str  # start | action | timer | event | child
    cmd: int  # the command it answers (0: none)
    make: Make


def simulate(program: Program, *, workflow_id: str = "fuzz") -> Outcome:
    """Run ``program`` the three ways; return the outcome they agree on."""
    return _Simulation(program, workflow_id).run()


class _Simulation:
    def __init__(self, program: Program, workflow_id: str) -> None:
        self.program = program
        self.world = _World(random.Random(f"{program.seed}:{workflow_id}"))
        self.started = WorkflowStarted(1, START, DEFN.name, DEFN.version, workflow_id,
                                       f"run-{workflow_id}", "t", [program.root])
        self.history: list[Event] = [self.started]
        self.live = WorkflowInstance(DEFN, self.started, ACTIONS)
        self.world.ready.append(_Ready("start", 0, lambda s, t: self.started))
        for time, name, payload in program.events:
            make: Make = lambda s, t, n=name, p=payload: EventReceived(s, t, n, p)  # noqa: E731
            if time == 0:  # arrives with the start, before the workflow runs
                self.world.ready.append(_Ready("event", 0, make))
            else:
                self.world.events.append((START + time, make))
        if program.cancel_at is not None:
            self.world.events.append((START + program.cancel_at,
                                      lambda s, t: CancelRequested(s, t, "fuzz")))
            self.world.events.sort(key=lambda e: e[0])

    def run(self) -> Outcome:
        try:
            for _ in range(MAX_TASKS):
                batch = self.world.take_batch()
                if not batch or self.live.done:
                    break
                self._task(batch)
            else:
                raise self._fail("the run did not settle within MAX_TASKS workflow tasks")
            outcome = outcome_of(self.live, self.history)
            self._check_replayer(outcome)
            return outcome
        finally:
            self.live.close()

    def _task(self, batch: list[Make]) -> None:
        now = self.world.now
        inputs = []
        for make in batch:
            event = make(len(self.history) + 1, now)
            if type(event) is WorkflowStarted:
                inputs.append(event)  # the first event, already in the history
                continue
            self.history.append(event)
            inputs.append(event)
        activation = self.live.activate(inputs, now)
        if activation.error is not None:
            raise self._fail(f"the live run diverged: {activation.error}")
        self._check_rebuilt(activation.commands, now)
        self.history.append(TaskCompleted(len(self.history) + 1, now))
        for command in activation.commands:
            self.history.append(command.to_event(len(self.history) + 1, now))
            self._carry_out(command)
        if self.program.queries and self.world.rng.random() < 0.5:
            self.live.handlers.query("trace", [])  # read-only: must change nothing

    def _check_rebuilt(self, commands: list[Command], now: float) -> None:
        """A fresh instance replays the history so far, then runs the same batch."""
        fresh = WorkflowInstance(DEFN, self.started, ACTIONS)
        try:
            pending, failed = replay(fresh, self.history)
            if failed is not None:
                raise self._fail(f"a rebuilt instance diverged from the history: {failed.error}")
            rebuilt = fresh.activate(pending, now)
            if rebuilt.error is not None or rebuilt.commands != commands:
                raise self._fail("a rebuilt instance issued other commands than the live one:\n"
                                 f"  live:    {commands}\n  rebuilt: {rebuilt.commands}\n"
                                 f"  error:   {rebuilt.error}")
        finally:
            fresh.close()

    def _carry_out(self, command: Command) -> None:
        world = self.world
        kind = type(command)
        if kind is ScheduleAction:
            world.ready.append(_Ready("action", command.cmd,  # type: ignore[attr-defined]
                                      self._action_outcome(command)))  # type: ignore[arg-type]
        elif kind is StartTimer:
            world.timers[command.cmd] = command.fire_at  # type: ignore[attr-defined]
        elif kind is CancelTimer:  # the store deletes its row: a fire not delivered is gone
            world.timers.pop(command.cmd, None)  # type: ignore[attr-defined]
            world.drop("timer", command.cmd)  # type: ignore[attr-defined]
        elif kind is CancelAction:
            # The attempt may still finish and be recorded (the workflow ignores it) or not.
            if world.rng.random() < 0.5:
                world.drop("action", command.cmd)  # type: ignore[attr-defined]
        elif kind is StartChild:
            self._start_child(command)  # type: ignore[arg-type]
        elif kind is CancelChild:
            self._cancel_child(command)  # type: ignore[arg-type]

    def _action_outcome(self, command: ScheduleAction) -> Make:
        node_id, fail = command.args
        cmd = command.cmd
        if fail == 9:
            error = ErrorInfo("FuzzActionError", f"node {node_id} attempt 2")
            return lambda s, t: ActionFailed(s, t, cmd, error, 2)
        attempt = 2 if fail == 1 else 1
        return lambda s, t: ActionCompleted(s, t, cmd, act_result(node_id), attempt)

    def _start_child(self, command: StartChild) -> None:
        cmd = command.cmd
        child = Program(command.args[0], [], None, False, self.program.seed)  # scale 1
        outcome = _Simulation(child, command.workflow_id).run()
        self.world.ready.append(_Ready("child", cmd, lambda s, t: ChildStarted(s, t, cmd)))
        end = _child_end(cmd, outcome)
        if end is not None:
            self.world.ready.append(_Ready("child", cmd, end))

    def _cancel_child(self, command: CancelChild) -> None:
        """The child is told to cancel: it ends so, unless its own end is on its way."""
        cmd = command.cmd
        started = [r for r in self.world.ready if r.kind == "child" and r.cmd == cmd][:1]
        if len(started) == 1 and self.world.rng.random() < 0.5:
            return  # the child ended before it saw the cancellation
        self.world.drop("child", cmd)
        if command.run_id is not None:  # not started yet when the parent ran: started now
            self.world.ready += started
        self.world.ready.append(_Ready("child", cmd, lambda s, t: ChildCancelled(s, t, cmd)))

    def _check_replayer(self, outcome: Outcome) -> None:
        check_replay(self.program, self.history, outcome)

    def _fail(self, what: str) -> Disagreement:
        return disagreement(what, self.program, self.history)


def check_replay(program: Program, history: list[Event], outcome: Outcome) -> None:
    """The history keeps its invariants; ``durable.Replayer`` and a replay of the whole
    history end as the run did."""
    if outcome.status != "suspended":
        try:
            check_history(history, settled=False)  # a run may end with work pending
        except AssertionError as exc:
            raise disagreement(str(exc), program, history) from None
    try:
        replayed = durable.Replayer([fuzz_program], [fuzz_act]).replay(history)
    except durable.errors.NonDeterminismError as exc:
        raise disagreement(f"the Replayer diverged from the history: {exc}", program,
                           history) from None
    mine = (outcome.status in ("completed", "failed", "cancelled"), outcome.state, outcome.data)
    theirs = (replayed.done, replayed.state, replayed.data)
    if mine != theirs:
        raise disagreement(f"the Replayer ended elsewhere: run {mine}, replayed {theirs}",
                           program, history)
    started = history[0]
    assert isinstance(started, WorkflowStarted)
    fresh = WorkflowInstance(DEFN, started, ACTIONS)
    try:
        replay(fresh, history)
        again = outcome_of(fresh, history)
        if again != outcome:
            raise disagreement("a replay of the whole history ended with another outcome:\n"
                               f"  run:      {outcome}\n  replayed: {again}", program, history)
    finally:
        fresh.close()


def disagreement(what: str, program: Program, history: list[Event]) -> Disagreement:
    lines = "\n  ".join(repr(e) for e in history)
    return Disagreement(f"{what}\nprogram: {program!r}\nhistory:\n  {lines}")


def _child_end(cmd: int, outcome: Outcome) -> Make | None:
    if outcome.status == "completed":
        return lambda s, t: ChildCompleted(s, t, cmd, outcome.value)
    if outcome.status == "failed":
        error = ErrorInfo(*outcome.value)
        return lambda s, t: ChildFailed(s, t, cmd, error)
    if outcome.status == "cancelled":
        return lambda s, t: ChildCancelled(s, t, cmd)
    return None  # it waits for ever


def outcome_of(instance: WorkflowInstance, history: list[Event]) -> Outcome:
    """How the instance ended (or where it waits), with the commands of ``history``."""
    last = instance.outcome
    commands = describe_commands(history)
    state, data = instance.state, dict(instance.data)
    if type(last) is CompleteWorkflow:
        return Outcome("completed", last.result, state, data, commands)
    if type(last) is FailWorkflow:
        return Outcome("failed", [last.error.type, last.error.message], state, data, commands)
    if last is not None:
        return Outcome("cancelled", None, state, data, commands)
    return Outcome("suspended", instance.suspended_at(), state, data, commands)


def describe_commands(history: list[Event]) -> list[str]:
    """The command events of a history, by kind and name: what every run must agree on."""
    return [f"{type(e).__name__} {getattr(e, 'name', None) or getattr(e, 'key', None) or ''}"
            .strip() for e in history if not isinstance(e, _NOT_COMMANDS)]


_NOT_COMMANDS = (WorkflowStarted, TaskCompleted, ActionCompleted, ActionFailed, TimerFired,
                 EventReceived, CancelRequested, ChildStarted, ChildCompleted, ChildFailed,
                 ChildCancelled)
