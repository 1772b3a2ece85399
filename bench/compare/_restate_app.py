"""The Restate side of ``restate_e2e.py``: the service (deployment) process, an ASGI app of
Restate's Python SDK served by hypercorn. It runs in the scratch virtualenv that
``restate_e2e.py`` makes (``restate-sdk`` and ``hypercorn`` are not dependencies of durable).

    VENV/bin/python -m hypercorn bench.compare._restate_app:app --bind 127.0.0.1:PORT

The workflows mirror ``bench/_e2e_flows.py``: ``BenchThreeSteps`` adds one three times, each in
a ``ctx.run`` (a journaled step, as a durable action); ``BenchManySteps`` runs ``steps`` steps
that each sleep ``seconds`` (the recovery benchmark's).
"""

from __future__ import annotations

import asyncio
from typing import Any

import restate

three = restate.Workflow("BenchThreeSteps")
many = restate.Workflow("BenchManySteps")


async def add_one(n: int) -> int:
    return n + 1


async def pause(seconds: float) -> None:
    await asyncio.sleep(seconds)


@three.main(name="run")
async def run_three(ctx: restate.WorkflowContext, n: int) -> int:
    for _ in range(3):
        n = await ctx.run_typed("add_one", add_one, restate.RunOptions(), n)
    return n


@many.main(name="run")
async def run_many(ctx: restate.WorkflowContext, request: dict[str, Any]) -> int:
    steps, seconds = int(request["steps"]), float(request["seconds"])
    for _ in range(steps):
        await ctx.run_typed("pause", pause, restate.RunOptions(), seconds)
    return steps


app = restate.app([three, many])
