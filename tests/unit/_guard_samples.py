"""Workflows that call what replays differently, for the determinism guard's tests (imported
with the guard's warnings silenced)."""

from __future__ import annotations

import datetime
import os
import random
import time as clock
import uuid
from datetime import date

import durable

SEEDED = random.Random(7)  # seeded: deterministic, not reported


@durable.workflow(name="GuardSampleClock")
async def reads_the_clock(ctx: durable.Context) -> float:
    started = datetime.datetime.now()
    today = date.today()
    return clock.time() + started.timestamp() + today.toordinal()


@durable.workflow(name="GuardSampleChance")
async def draws_at_random(ctx: durable.Context) -> list[str]:
    def pick() -> int:
        return random.randint(1, 6)  # in a nested function too

    return [str(uuid.uuid4()), os.environ.get("HOME", ""), str(pick()), str(SEEDED.random())]


@durable.workflow(name="GuardSampleClean")
async def clean(ctx: durable.Context) -> str:
    return f"{ctx.now()} {ctx.random()} {ctx.uuid4()}"
