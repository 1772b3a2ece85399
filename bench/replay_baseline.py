"""Replay throughput of a recorded history of N sequential action calls, next to the floors.

    .venv/bin/python bench/replay_baseline.py [--steps 10000] [--repeat 7]

The history is recorded by running the workflow live through the engine, encoded as the stores
keep it (one MessagePack blob per event), then decoded and replayed by a fresh instance, as a
worker does after a crash. Printed next to it, measured in the same run:

* a bare coroutine awaiting N futures that are already completed (no suspension at all), and
* a bare coroutine awaiting N futures each resolved on the next turn of an asyncio loop (one
  loop iteration per step: the floor any asyncio-based replay pays).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import durable  # noqa: E402
from durable._definitions import workflow_definition  # noqa: E402
from durable._history import (  # noqa: E402
    ActionCompleted, Event, ScheduleAction, TaskCompleted, WorkflowStarted, decode_event,
    encode_event,
)
from durable._replay import WorkflowInstance, replay  # noqa: E402


@durable.action
async def step(i: int) -> int:
    return i


@durable.workflow(name="Sequential")
async def sequential(ctx: durable.Context, n: int) -> int:
    total = 0
    for i in range(n):
        total += await ctx.run(step, i)
    return total


def record(n: int) -> tuple[WorkflowStarted, list[bytes]]:
    """Run the workflow live once and return its history as stored blobs."""
    defn = workflow_definition(sequential)
    started = WorkflowStarted(1, 0.0, defn.name, defn.version, "bench", "run", "t", [n])
    instance = WorkflowInstance(defn, started)
    history: list[Event] = [started]
    inputs: list[Event] = [started]
    now = 1_000.0
    while not instance.done:
        activation = instance.activate(inputs, now)
        history.append(TaskCompleted(len(history) + 1, now))
        inputs = []
        for command in activation.commands:
            history.append(command.to_event(len(history) + 1, now))
            if isinstance(command, ScheduleAction):
                done = ActionCompleted(len(history) + 1, now, command.cmd, command.args[0])
                history.append(done)
                inputs.append(done)
    return started, [encode_event(e) for e in history]


def replay_blobs(started: WorkflowStarted, blobs: list[bytes]) -> None:
    events = [decode_event(b) for b in blobs]
    instance = WorkflowInstance(workflow_definition(sequential), started)
    _, failed = replay(instance, events)
    assert failed is None and instance.done


def await_completed(n: int) -> None:
    async def body(futures: list[asyncio.Future[int]]) -> None:
        for fut in futures:
            await fut

    loop = asyncio.new_event_loop()
    try:
        futures = []
        for i in range(n):
            fut = loop.create_future()
            fut.set_result(i)
            futures.append(fut)
        loop.run_until_complete(body(futures))
    finally:
        loop.close()


def one_iteration_per_step(n: int) -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        for i in range(n):
            fut = loop.create_future()
            loop.call_soon(fut.set_result, i)
            await fut

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(body())
    finally:
        loop.close()


def best_of(repeat: int, fn: Callable[[], Any]) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    n = args.steps
    print(f"recording a history of {n} sequential action calls ...", file=sys.stderr)
    started, blobs = record(n)
    print(f"history: {len(blobs)} events, {sum(map(len, blobs)) / len(blobs):.0f} bytes/event",
          file=sys.stderr)
    rows = [
        ("durable replay (decode + replay)", len(blobs), lambda: replay_blobs(started, blobs)),
        ("bare coroutine, completed futures", n, lambda: await_completed(n)),
        ("bare coroutine, 1 loop iteration/step", n, lambda: one_iteration_per_step(n)),
    ]
    results = []
    for name, events, fn in rows:
        print(f"timing: {name} ...", file=sys.stderr)
        results.append((name, events, *best_of(args.repeat, fn)))
    floor = results[2][2] / n
    print(f"\n{'what':40} {'events/s':>12} {'us/step best':>13} {'us/step median':>15} {'x floor':>8}")
    for name, events, best, median in results:
        print(f"{name:40} {events / best:12,.0f} {best / n * 1e6:13.2f} {median / n * 1e6:15.2f}"
              f" {best / n / floor:8.2f}")
    print(f"\n(floor = one asyncio loop iteration per step; N = {n} steps, best of {args.repeat})")


if __name__ == "__main__":
    main()
