"""The soak's workflows and its effect: what the worker processes run.

Every action call applies one effect: a row in ``soak_effects`` keyed by the call's
idempotency key (``INSERT ... ON CONFLICT``: a retried attempt of one call only counts an
attempt). Within an execution each call has its own ``label``, so two rows with one
(workflow id, label) are one logical step applied twice: a duplicated effect.

``SoakMix`` uses everything a workflow may: sequential and parallel actions, durable timers,
continue-as-new, an external event (``Go``, sent by the driver, some twice with one key), a
child workflow. ``SoakQuick`` is two actions around a short timer.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import asyncpg

import durable

PG_ENV = "DURABLE_SOAK_PG"  # the database of the effects table (the store's own)
GO = "Go"
EFFECTS_DDL = """
CREATE TABLE IF NOT EXISTS soak_effects (
    key         text PRIMARY KEY,
    workflow_id text NOT NULL,
    label       text NOT NULL,
    attempts    integer NOT NULL DEFAULT 1
)"""
# Enough attempts to outlast a PostgreSQL restart and a killed worker in a row.
_RETRY = durable.Retry(attempts=30, initial=0.1, maximum=2.0)
_pool: asyncpg.Pool | None = None


async def _effects_pool() -> asyncpg.Pool:
    global _pool
    if _pool is None:
        _pool = await asyncpg.create_pool(os.environ[PG_ENV], min_size=1, max_size=4)
    return _pool


@durable.action(retry=_RETRY, timeout=30.0)
async def effect(label: str) -> str:
    """Apply this call's effect once, whatever the number of attempts."""
    info = durable.action_info()
    pool = await _effects_pool()
    await pool.execute(
        "INSERT INTO soak_effects (key, workflow_id, label) VALUES ($1, $2, $3) "
        "ON CONFLICT (key) DO UPDATE SET attempts = soak_effects.attempts + 1",
        info.idempotency_key, info.workflow_id, label)
    return label


@durable.workflow(name="SoakChild")
async def soak_child(ctx: durable.Context, i: int) -> str:
    """An action, then a short timer."""
    done = await ctx.run(effect, "child")
    await ctx.sleep(0.2)
    return f"{done}-{i}"


@durable.workflow(name="SoakMix")
async def soak_mix(ctx: durable.Context, i: int, nap: float, part: int = 0) -> dict[str, Any]:
    """Part 0: actions, a timer, continue as new. Part 1: actions, an event, a child."""
    first = await ctx.run(effect, f"{part}:a")
    pair = await asyncio.gather(ctx.run(effect, f"{part}:b"), ctx.run(effect, f"{part}:c"))
    if part == 0:
        await ctx.sleep(nap)
        ctx.continue_as_new(i, nap, 1)
    go = await ctx.wait_for(GO)
    assert go is not None
    child = await ctx.start_child(soak_child, i, id=f"{ctx.info.workflow_id}-child")
    kid = await child
    last = await ctx.run(effect, f"{part}:d")
    return {"steps": [first, *pair, last], "go": go.payload, "child": kid}


def soak_mix_result(i: int) -> dict[str, Any]:
    """What ``soak_mix(i, ...)`` returns once its event (payload ``i``) arrived."""
    return {"steps": ["1:a", "1:b", "1:c", "1:d"], "go": i, "child": f"child-{i}"}


@durable.workflow(name="SoakQuick")
async def soak_quick(ctx: durable.Context, i: int, nap: float) -> int:
    """An action, a timer, an action."""
    await ctx.run(effect, "a")
    await ctx.sleep(nap)
    await ctx.run(effect, "b")
    return i


WORKFLOWS = [soak_mix, soak_quick, soak_child]
ACTIONS = [effect]
EFFECTS_PER_RUN = {"SoakMix": 7 + 1, "SoakQuick": 2}  # SoakMix: 7 of its own, 1 of its child
