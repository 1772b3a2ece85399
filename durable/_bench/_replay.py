"""Replay throughput by workflow shape and history size, next to the floors, in one run.

    durable bench [--events 10 1000 10000 100000] [--shapes ...] [--repeat 5]
    .venv/bin/python bench/replay.py ...     (the same, from the repository)

Each history is recorded by running the shape live through the engine, stored as the stores
keep it (one MessagePack blob per event), then decoded and replayed by ``durable.Replayer``'s
engine on a fresh instance, as a worker does after a crash (decoding included). Floors,
measured in the same run: a bare coroutine resumed by ``send()``, one awaiting futures that are
already completed, a task on a workflow loop awaiting a future per step (the asyncio machinery
every replayed step goes through, without replay's own work), and one taking an asyncio loop
iteration per step (the default loop, and uvloop when installed).

With ``--verify``, each history is also replayed from stored rows (seq, body, chained
checksum), as a store reads them: once with the rows checked as every read checks them
(``durable._stores._integrity.checked``) and once only decoded, in the same run; the table
shows both and what the check costs.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
from collections.abc import Generator, Sequence
from operator import itemgetter
from typing import Callable

import msgspec

from .._definitions import workflow_definition
from .._history import Event, WorkflowStarted
from .._replay import WorkflowInstance, replay
from .._stores._integrity import Row, chain, checked
from . import add_arguments
from ._shapes import SHAPES, record, steps_for

__all__ = ["best", "floors", "loop_iterations", "main", "replay_blobs", "replay_rows", "run",
           "stored_rows", "workflow_loop_steps"]

_RUN = ("tenant", "bench-workflow", "bench-run")  # the run the stored rows belong to
_decode = msgspec.msgpack.Decoder(Event).decode  # what the check decodes with, too
_body = itemgetter(1)


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def replay_blobs(shape: str, blobs: list[bytes]) -> None:
    """Decode and replay a stored history (what a worker does on a cache miss)."""
    _replay(shape, list(map(_decode, blobs)))  # as the stores' reads decode them


def stored_rows(blobs: list[bytes]) -> list[Row]:
    """A history's rows as a store keeps them: seq, body and checksum chained through the run."""
    return list(zip(range(1, len(blobs) + 1), blobs, chain(_RUN, None, blobs)))


def replay_rows(shape: str, rows: list[Row], verify: bool) -> None:
    """Replay a history read from stored rows, checked as a store's read checks them, or
    only decoded (as reads were before checksums)."""
    if verify:
        _replay(shape, checked(_RUN, rows, last_seq=len(rows)))
    else:  # decoded as the check decodes them, so that the difference is the check alone
        _replay(shape, list(map(_decode, map(_body, rows))))


def _replay(shape: str, events: list[Event]) -> None:
    started = events[0]
    assert isinstance(started, WorkflowStarted)
    instance = WorkflowInstance(workflow_definition(SHAPES[shape][0]), started)
    _, failed = replay(instance, events)
    assert failed is None and instance.done


def bare_send(n: int) -> None:
    """A coroutine resumed ``n`` times by ``send()``: the cost of Python itself."""
    class Step:
        def __await__(self) -> Generator[None, None, None]:
            return (yield)

    async def body() -> None:
        s = Step()
        for _ in range(n):
            await s

    coro = body()
    coro.send(None)
    try:
        for _ in range(n):
            coro.send(None)
    except StopIteration:
        pass


def completed_futures(n: int) -> None:
    """A coroutine awaiting ``n`` futures that are already completed (it never suspends)."""
    async def body(futures: list[asyncio.Future[int]]) -> None:
        for fut in futures:
            await fut

    loop = asyncio.new_event_loop()
    try:
        futures: list[asyncio.Future[int]] = []
        for i in range(n):
            futures.append(loop.create_future())
            futures[-1].set_result(i)
        loop.run_until_complete(body(futures))
    finally:
        loop.close()


def workflow_loop_steps(n: int) -> None:
    """A task on a workflow loop awaiting ``n`` fresh futures, each resolved by ``set_result``
    and run by the loop: the asyncio machinery that every replayed step goes through (a
    ``Future``, the task's wake-up through ``call_soon``, one step of the coroutine), and
    nothing of replay's own (no history, no matching)."""
    from .._replay._info import WorkflowInfo
    from .._replay._loop import WorkflowLoop
    from .._replay._matcher import Matcher
    from .._replay._timers import Timers

    info = WorkflowInfo("w", "r", "t", "floor", "1")
    loop = WorkflowLoop(Timers(Matcher(info, False)), "r")  # type: ignore[abstract]
    futures: list[asyncio.Future[int]] = []

    async def body() -> None:
        for _ in range(n):
            futures.append(asyncio.Future(loop=loop))
            await futures[-1]

    outer = loop.enter()
    try:
        loop.create_task(body())
        loop.run_ready()
        for i in range(n):
            futures.pop().set_result(i)
            loop.run_ready()
    finally:
        loop.leave(outer)


def loop_iterations(n: int, new_loop: Callable[[], asyncio.AbstractEventLoop]) -> None:
    """A coroutine awaiting ``n`` futures, each resolved on the loop's next iteration."""
    async def body() -> None:
        loop = asyncio.get_running_loop()
        for i in range(n):
            fut = loop.create_future()
            loop.call_soon(fut.set_result, i)
            await fut

    loop = new_loop()
    try:
        loop.run_until_complete(body())
    finally:
        loop.close()


def best(repeat: int, fn: Callable[[], None], *, sample: float = 0.0,
         clock: Callable[[], float] = time.perf_counter) -> float:
    """Seconds per call of ``fn``: the fastest of ``repeat`` runs (GC collected before each);
    with ``sample``, each run calls ``fn`` as many times as take at least that many seconds
    (one call of a millisecond is at the mercy of anything else the machine does)."""
    def run(number: int) -> float:
        gc.collect()
        t0 = clock()
        for _ in range(number):
            fn()
        return clock() - t0

    number, took = 1, run(1)
    while took < sample:
        number = max(number * 2, int(number * sample / max(took, 1e-6) * 1.1))
        took = run(number)
    return min([took, *(run(number) for _ in range(repeat - 1))]) / number


def floors(steps: int, repeat: int) -> dict[str, float]:
    """Seconds per step of each floor."""
    result = {"coroutine send()": best(repeat, lambda: bare_send(steps)) / steps,
              "awaiting completed futures": best(repeat, lambda: completed_futures(steps)) / steps,
              "workflow loop step": best(repeat, lambda: workflow_loop_steps(steps)) / steps,
              "asyncio loop iteration": best(
                  repeat, lambda: loop_iterations(steps, asyncio.new_event_loop)) / steps}
    try:
        import uvloop

        result["uvloop iteration"] = best(
            repeat, lambda: loop_iterations(steps, uvloop.new_event_loop)) / steps
    except ImportError:
        pass
    return result


def main(argv: Sequence[str] | None = None) -> None:
    """Measure and print the table (``argv``: the options, default ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    add_arguments(parser)
    run(parser.parse_args(argv))


def run(args: argparse.Namespace) -> None:
    """Measure the floors, then each shape at each size; print the table and the targets."""
    progress("measuring the floors ...")
    floor = floors(20_000, args.repeat)
    loop_floor = floor["asyncio loop iteration"]
    rows: list[tuple[str, int, int, float]] = []
    verified: list[tuple[str, int, int, float, float]] = []
    for shape in args.shapes:
        for size in args.events:
            steps = steps_for(shape, size)
            progress(f"{shape}: recording {steps} steps ...")
            _, blobs = record(shape, steps)
            seconds = best(args.repeat, lambda: replay_blobs(shape, blobs), sample=0.1)
            rows.append((shape, len(blobs), steps, seconds))
            if getattr(args, "verify", False):
                verified.append((shape, len(blobs), steps, *_with_and_without(shape, blobs,
                                                                              args.repeat)))
    if getattr(args, "json", False):  # durable bench --json: one document, fields by name
        print(_document(rows, floor, verified))
        return
    print(f"\n{'shape':11} {'events':>8} {'steps':>7} {'events/s':>11} {'us/step':>8} "
          f"{'x loop':>7}")
    for shape, events, steps, seconds in rows:
        print(f"{shape:11} {events:8,} {steps:7,} {events / seconds:11,.0f} "
              f"{seconds / steps * 1e6:8.2f} {seconds / steps / loop_floor:7.2f}")
    print("\nfloors (us/step): " + ", ".join(f"{k} {v * 1e6:.2f}" for k, v in floor.items()))
    by = {(s, e): sec / st for s, e, st, sec in rows}
    for shape in args.shapes:
        sizes = sorted(e for s, e in by if s == shape)
        small = next((e for e in sizes if e >= 900), None)
        if small is not None and sizes[-1] > small:
            print(f"{shape}: us/step at {sizes[-1]:,} events is "
                  f"{by[(shape, sizes[-1])] / by[(shape, small)]:.2f}x that at {small:,} "
                  "(target <= 1.5x)")
    print("targets: sequential at ~1,000 events <= 9 us/step (100x Temporal's unsandboxed "
          "Replayer) and <= 2.5x one asyncio loop iteration per step; at the floor (issue 14): "
          "sequential at ~1,000 events <= 2.0 us/step, histories of ~10 events <= 5 us/step")
    if verified:
        _print_verified(verified)


def _document(rows: list[tuple[str, int, int, float]], floor: dict[str, float],
              verified: list[tuple[str, int, int, float, float]]) -> str:
    loop_floor = floor["asyncio loop iteration"]
    return msgspec.json.encode({
        "shapes": [{"shape": shape, "events": events, "steps": steps,
                    "events_per_second": events / seconds, "us_per_step": seconds / steps * 1e6,
                    "x_loop": seconds / steps / loop_floor}
                   for shape, events, steps, seconds in rows],
        "floors_us_per_step": {name: value * 1e6 for name, value in floor.items()},
        "verified": [{"shape": shape, "events": events, "us_per_step": plain / steps * 1e6,
                      "checked_us_per_step": checked / steps * 1e6}
                     for shape, events, steps, plain, checked in verified]}).decode()


def _with_and_without(shape: str, blobs: list[bytes], repeat: int) -> tuple[float, float]:
    """Seconds per replay from stored rows, only decoded and checked: the fastest of many
    short runs of each, taken in turns, in this process's CPU time (on a shared machine, the
    other processes then weigh on both alike and little)."""
    stored = stored_rows(blobs)
    plain, checked_ = float("inf"), float("inf")
    for _ in range(3 * repeat):
        plain = min(plain, best(1, lambda: replay_rows(shape, stored, False), sample=0.03,
                                clock=time.process_time))
        checked_ = min(checked_, best(1, lambda: replay_rows(shape, stored, True), sample=0.03,
                                      clock=time.process_time))
    return plain, checked_


def _print_verified(verified: list[tuple[str, int, int, float, float]]) -> None:
    print("\nreplay from stored rows, checksums checked (as every read does) next to not:")
    print(f"{'shape':11} {'events':>8} {'us/step':>8} {'checked':>8} {'cost':>7}")
    for shape, events, steps, plain, checked_ in verified:
        print(f"{shape:11} {events:8,} {plain / steps * 1e6:8.2f} "
              f"{checked_ / steps * 1e6:8.2f} {(checked_ / plain - 1) * 100:+6.1f}%")
    worst = max(c / p for _, _, _, p, c in verified)
    print(f"checking costs at most {(worst - 1) * 100:+.1f}% of a replay (target < 10 %)")
