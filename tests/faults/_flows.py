"""Workflows and actions that the fault tests run in worker subprocesses.

Every action appends JSON lines to the effects log named by ``$DURABLE_FAULTS_EFFECTS``: a
"start" line before its work and an "end" line after it, each one ``write`` with ``O_APPEND``
and fsynced, so the test sees which attempts started and which finished even when the worker
was SIGKILLed in between. Within one workflow every call has distinct arguments, so
``(workflow_id, action, args)`` names a call without relying on the idempotency key's format.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import durable

EFFECTS_ENV = "DURABLE_FAULTS_EFFECTS"
GATE_ENV = "DURABLE_FAULTS_GATE"
GO = "Go"
GO_PAYLOAD = {"n": 4}
MIX = "mix"  # the label every FaultMix run uses
NAP = 1.0  # the FaultMix sleep: long enough to kill a worker in it

# Enough attempts for the chaos test: on a loaded machine a 1 s lease can lapse between two
# heartbeats, and a SIGKILL every second can take two attempts of one call in a row.
_RETRY = durable.Retry(attempts=10, initial=0.05, maximum=0.5)


def _record(phase: str, args: list[Any]) -> None:
    info = durable.action_info()
    line = {"phase": phase, "key": info.idempotency_key, "attempt": info.attempt,
            "action": info.action, "args": args, "workflow_id": info.workflow_id,
            "run_id": info.run_id, "pid": os.getpid(), "time": time.time()}
    fd = os.open(os.environ[EFFECTS_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(line, sort_keys=True) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def read_effects(path: Path) -> list[dict[str, Any]]:
    """The effects log's lines, oldest first (one ``write`` each, so never torn)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line]


@durable.action(retry=_RETRY, timeout=30.0)
async def step(label: str, n: int) -> str:
    """A quick action."""
    _record("start", [label, n])
    await asyncio.sleep(0)
    _record("end", [label, n])
    return f"{label}:{n}"


@durable.action(retry=_RETRY, timeout=60.0)
async def gate(label: str) -> str:
    """A slow action: it runs until the file ``$DURABLE_FAULTS_GATE`` exists."""
    _record("start", [label])
    path = os.environ[GATE_ENV]
    while not os.path.exists(path):
        await asyncio.sleep(0.01)
    _record("end", [label])
    return f"{label}:gate"


@durable.action(retry=_RETRY, timeout=30.0)
async def work(i: int, n: int, seconds: float) -> int:
    """An action that takes ``seconds``."""
    _record("start", [i, n, seconds])
    await asyncio.sleep(seconds)
    _record("end", [i, n, seconds])
    return i * 10 + n


@durable.workflow(name="FaultMix")
async def fault_mix(ctx: durable.Context, label: str, nap: float) -> dict[str, Any]:
    """Sequential and parallel actions, a slow action, a durable sleep and an external event."""
    ctx.set_state("stepping")
    first = await ctx.run(step, label, 1)
    pair = await asyncio.gather(ctx.run(step, label, 2), ctx.run(step, label, 3))
    opened = await ctx.run(gate, label)
    ctx.set_state("sleeping")
    await ctx.sleep(nap)
    ctx.set_state("waiting")
    go = await ctx.wait_for(GO)
    assert go is not None
    last = await ctx.run(step, label, go.payload["n"])
    ctx.set_state("done")
    return {"steps": [first, *pair, opened, last], "go": go.payload}


def fault_mix_result(label: str) -> dict[str, Any]:
    """What ``fault_mix(label, ...)`` returns when it gets ``GO_PAYLOAD``."""
    return {"steps": [f"{label}:1", f"{label}:2", f"{label}:3", f"{label}:gate", f"{label}:4"],
            "go": GO_PAYLOAD}


@durable.workflow(name="FaultBatch")
async def fault_batch(ctx: durable.Context, i: int, nap: float, seconds: float) -> list[int]:
    """An action, two in parallel, an optional durable sleep, one more action."""
    a = await ctx.run(work, i, 1, seconds)
    b, c = await asyncio.gather(ctx.run(work, i, 2, seconds), ctx.run(work, i, 3, seconds))
    if nap > 0:
        await ctx.sleep(nap)
    d = await ctx.run(work, i, 4, seconds)
    return [a, b, c, d]


def fault_batch_result(i: int) -> list[int]:
    """What ``fault_batch(i, ...)`` returns."""
    return [i * 10 + n for n in (1, 2, 3, 4)]


WORKFLOWS = [fault_mix, fault_batch]
ACTIONS = [step, gate, work]


@durable.workflow(name="ProdMix")
async def prod_mix(ctx: durable.Context, i: int, nap: float) -> list[int]:
    """An action, two in parallel, a durable sleep, a wait for ``go``, one more action."""
    a = await ctx.run(work, i, 1, 0.0)
    b, c = await asyncio.gather(ctx.run(work, i, 2, 0.0), ctx.run(work, i, 3, 0.0))
    await ctx.sleep(nap)
    go = await ctx.wait_for(GO)
    assert go is not None
    d = await ctx.run(work, i, go.payload["n"], 0.01)
    return [a, b, c, d]


def prod_mix_result(i: int) -> list[int]:
    """What ``prod_mix(i, ...)`` returns when it gets ``GO_PAYLOAD``."""
    return [i * 10 + n for n in (1, 2, 3, GO_PAYLOAD["n"])]


WORKFLOWS.append(prod_mix)


@durable.workflow(name="FaultChild")
async def fault_child(ctx: durable.Context, label: str) -> str:
    """A step, then the slow action: a worker can be killed in it."""
    first = await ctx.run(step, label, 1)
    opened = await ctx.run(gate, label)
    return f"{first}+{opened}"


@durable.workflow(name="FaultParent")
async def fault_parent(ctx: durable.Context, label: str) -> dict[str, Any]:
    """A step, a child workflow (awaited), a step."""
    before = await ctx.run(step, label, 0)
    kid = await ctx.start_child(fault_child, f"{label}-child", id=f"{ctx.info.workflow_id}-child")
    result = await kid
    after = await ctx.run(step, label, 9)
    return {"before": before, "child": result, "after": after}


def fault_parent_result(label: str) -> dict[str, Any]:
    """What ``fault_parent(label)`` returns."""
    return {"before": f"{label}:0", "child": f"{label}-child:1+{label}-child:gate",
            "after": f"{label}:9"}


WORKFLOWS += [fault_child, fault_parent]


@durable.action(retry=_RETRY, heartbeat_timeout=60.0)
async def resumable(label: str, total: int) -> dict[str, Any]:
    """Counts to ``total``, reporting each step in a heartbeat; a later attempt resumes from
    the last one reported. The first attempt stops at step 2 until ``$DURABLE_FAULTS_GATE``
    exists (a worker can be killed there)."""
    info = durable.action_info()
    start = (info.heartbeat_details or {}).get("next", 0)
    _record("start", [label, total, start])
    for i in range(start, total):
        info.heartbeat({"next": i + 1})
        if i == 2 and info.attempt == 1:
            while not os.path.exists(os.environ[GATE_ENV]):
                await asyncio.sleep(0.01)
    _record("end", [label, total, start])
    return {"resumed_from": start, "attempt": info.attempt}


@durable.workflow(name="FaultResumable")
async def fault_resumable(ctx: durable.Context, label: str) -> dict[str, Any]:
    """One long action that reports its progress."""
    return await ctx.run(resumable, label, 5)


WORKFLOWS.append(fault_resumable)
ACTIONS.append(resumable)
