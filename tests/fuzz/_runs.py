"""Fuzz programs run by real workers: in ``durable.testing.Environment`` (live, and rebuilt from
history at every task) and in worker processes on a SQLite file that are SIGKILLed mid-run.

Each run's history must satisfy the history invariants, and ``durable.Replayer`` (and a
replay of the whole history) must end exactly as the store says the run ended.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import durable
from durable._history import (
    Event, WorkflowCancelled, WorkflowCompleted, WorkflowFailed,
)
from durable.errors import DurableError, WorkflowClosedError
from durable.testing import Environment

from ._program import Program, fuzz_act, fuzz_program
from ._simulate import Outcome, check_replay, describe_commands

SCALE = 0.1  # durations in real time (worker processes): 1-3 s become 100-300 ms


async def in_environment(program: Program, *, always_replay: bool) -> Outcome:
    """Run ``program`` in an Environment (virtual time); check its history; its outcome."""
    async with Environment([fuzz_program], [fuzz_act], always_replay=always_replay) as env:
        handle = await env.client.start(fuzz_program, program.root, id="fuzz")
        now = 0.0
        for at, send in _inputs(program, handle):
            if at > now:
                await env.sleep(at - now)
                now = at
            await send()
        try:
            await handle.result()
        except (durable.errors.WorkflowFailedError, durable.errors.WorkflowCancelledError):
            pass
        return await _checked(program, handle)


async def in_killed_workers(program: Program, rig: Any, kills: int, seed: int) -> Outcome:
    """Run ``program`` (durations times ``SCALE``) on worker processes on ``rig``'s SQLite
    file, SIGKILLing the worker ``kills`` times at random moments and starting another."""
    rng = random.Random(seed)
    handle = await rig.client.start(fuzz_program, program.root, SCALE, id=f"fuzz-{seed}")
    worker = _start_worker(rig, "w0")
    sender = asyncio.ensure_future(_send_in_real_time(program, handle))
    try:
        seen = 1
        for n in range(kills):
            # Mid-run: once the worker has recorded one to three more events (or ended it).
            seen = await _progress(rig, handle, seen + rng.randint(1, 3))
            await asyncio.sleep(rng.uniform(0.0, 0.05))
            rig.kill(worker)
            worker = _start_worker(rig, f"w{n + 1}")
        await rig.result(handle, timeout=60.0)
    except (durable.errors.WorkflowFailedError, durable.errors.WorkflowCancelledError):
        pass
    finally:
        await sender
    return await _checked(program, handle)


async def _progress(rig: Any, handle: durable.WorkflowHandle[Any], events: int) -> int:
    """Wait until the history has ``events`` events, or the run ended; return its length."""
    async def grown() -> int | None:
        history = await handle.history()
        ended = isinstance(history[-1], (WorkflowCompleted, WorkflowFailed, WorkflowCancelled))
        return len(history) if len(history) >= events or ended else None

    return int(await rig.eventually(grown, timeout=30.0, what=f"{events} events"))


def _start_worker(rig: Any, name: str) -> Any:
    return rig.procs.start_module(name, "tests.fuzz._worker", rig.url)


async def _send_in_real_time(program: Program, handle: durable.WorkflowHandle[Any]) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    for at, send in _inputs(program, handle):
        await asyncio.sleep(max(0.0, start + at * SCALE - loop.time()))
        await send()


def _inputs(program: Program, handle: durable.WorkflowHandle[Any]) -> list[tuple[float, Any]]:
    """(time after the start, a coroutine function that delivers it), in time order."""
    inputs: list[tuple[float, Any]] = []
    for at, name, payload in program.events:
        inputs.append((at, lambda n=name, p=payload, k=len(inputs): _quietly(
            handle.send(n, p, idempotency_key=f"e{k}"))))
    if program.cancel_at is not None:
        inputs.append((program.cancel_at, lambda: _quietly(handle.cancel("fuzz"))))
    if program.queries:
        inputs += [(at, lambda: _quietly(handle.query("trace", timeout=30.0)))
                   for at in (0.5, 1.5, 2.5)]
    return sorted(inputs, key=lambda i: i[0])


async def _quietly(call: Any) -> None:
    """Deliver an input; an execution that has ended refuses it, which is fine."""
    try:
        await call
    except WorkflowClosedError:
        pass


async def _checked(program: Program, handle: durable.WorkflowHandle[Any]) -> Outcome:
    history = await handle.history()
    description = await handle.describe()
    outcome = from_history(history, description.state, dict(description.data or {}))
    if outcome.status != description.status:
        raise AssertionError(f"the store says {description.status}, the history {outcome}")
    check_replay(program, history, outcome)
    return outcome


def from_history(history: list[Event], state: str | None, data: dict[str, Any]) -> Outcome:
    """The outcome a store recorded (its terminal event, state and data)."""
    last = history[-1] if history else None
    commands = describe_commands(history)
    if isinstance(last, WorkflowCompleted):
        return Outcome("completed", last.result, state, data, commands)
    if isinstance(last, WorkflowFailed):
        return Outcome("failed", [last.error.type, last.error.message], state, data, commands)
    if isinstance(last, WorkflowCancelled):
        return Outcome("cancelled", None, state, data, commands)
    raise DurableError(f"the run has not ended: {last}")

