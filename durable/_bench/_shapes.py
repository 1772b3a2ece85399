"""The workflow shapes the replay benchmarks use, and recording their histories.

Shapes (one "step" each):
- ``sequential``: ``await ctx.run(step, i)``            3 events/step
- ``timers``:     ``await ctx.sleep(1)``                3 events/step
- ``events``:     ``await ctx.wait_for("tick")``        2 events/step
- ``fanout``:     ``gather`` of 100 ``ctx.run`` calls   ~2 events/step
"""

from __future__ import annotations

import asyncio
from typing import Callable

from .._replay._context import Context
from .._definitions import action, workflow, workflow_definition
from .._history import (
    ActionCompleted, Event, EventReceived, ScheduleAction, StartTimer, TaskCompleted, TimerFired,
    WorkflowStarted, encode_event,
)
from .._replay import WorkflowInstance
from . import SHAPE_NAMES

FANOUT = 100


@action
async def step(i: int) -> int:
    return i


@workflow(name="BenchSequential")
async def sequential(ctx: Context, n: int) -> int:
    total = 0
    for i in range(n):
        total += await ctx.run(step, i)
    return total


@workflow(name="BenchTimers")
async def timers(ctx: Context, n: int) -> int:
    for _ in range(n):
        await ctx.sleep(1)
    return n


@workflow(name="BenchEvents")
async def events(ctx: Context, n: int) -> int:
    total = 0
    for _ in range(n):
        event = await ctx.wait_for("tick")
        total += event.payload  # type: ignore[union-attr]
    return total


@workflow(name="BenchFanout")
async def fanout(ctx: Context, n: int) -> int:
    total = 0
    for r in range(max(n // FANOUT, 1)):
        results = await asyncio.gather(*(ctx.run(step, r * FANOUT + i) for i in range(FANOUT)))
        total += sum(results)
    return total


SHAPES: dict[str, tuple[Callable[..., object], float]] = {
    # name: (workflow, history events per step)
    "sequential": (sequential, 3.0),
    "timers": (timers, 3.0),
    "events": (events, 2.0),
    "fanout": (fanout, 2.0),
}


assert tuple(SHAPES) == SHAPE_NAMES  # the CLI's choices, known without importing this module


def steps_for(shape: str, events: int) -> int:
    """How many steps make a history of about ``events`` events."""
    steps = max(int(events / SHAPES[shape][1]), 1)
    return max(steps // FANOUT, 1) * FANOUT if shape == "fanout" else steps


def record(shape: str, steps: int) -> tuple[list[Event], list[bytes]]:
    """Run the shape live through the engine once; its history, as events and stored blobs."""
    defn = workflow_definition(SHAPES[shape][0])
    started = WorkflowStarted(1, 0.0, defn.name, defn.version, f"bench-{shape}", "run", "t", [steps])
    instance = WorkflowInstance(defn, started)
    history: list[Event] = [started]
    inputs: list[Event] = [started]
    now = 1_000.0
    while not instance.done:
        activation = instance.activate(inputs, now)
        assert activation.error is None, activation.error
        history.append(TaskCompleted(len(history) + 1, now))
        inputs = []
        for command in activation.commands:
            history.append(command.to_event(len(history) + 1, now))
        for command in activation.commands:
            if isinstance(command, ScheduleAction):
                inputs.append(ActionCompleted(len(history) + 1, now, command.cmd, command.args[0]))
                history.append(inputs[-1])
            elif isinstance(command, StartTimer):
                now = command.fire_at
                inputs.append(TimerFired(len(history) + 1, now, command.cmd))
                history.append(inputs[-1])
        if not inputs and not instance.done:
            inputs.append(EventReceived(len(history) + 1, now, "tick", 1))
            history.append(inputs[-1])
    return history, [encode_event(e) for e in history]
