"""Three worker pools on PostgreSQL + Redis (workflows only; actions A; actions B and child
workflows), SIGKILLed at random: every task runs only on a pool that hosts it, every workflow
finishes with its result, every history checks out."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import pytest

import durable

from . import _fleet
from ._checks import check_history
from ._flows import read_effects
from ._procs import WorkerProc, eventually, make_procs

pytestmark = [pytest.mark.faults, pytest.mark.integration]

WORKFLOWS = 40
KILLS = 8


async def test_pools_run_only_what_they_host_through_sigkills(
        tmp_path: Path, pg_database: str, redis_url: str, redis_prefix: str) -> None:
    prefix = redis_prefix.rstrip(":")
    procs = make_procs(tmp_path, pg_database)
    live: dict[str, list[WorkerProc]] = {pool: [] for pool in _fleet.POOLS}
    log: list[str] = []

    def start(pool: str) -> None:
        live[pool].append(procs.start_module(
            f"{pool}-{len(live[pool])}", "tests.faults._fleet", pg_database, "--pool", pool,
            "--redis", redis_url, "--prefix", prefix))

    client = await durable.connect(pg_database, redis_url=redis_url, prefix=prefix)
    try:
        for pool in _fleet.POOLS:
            start(pool)
            start(pool)
        procs.start_module("server", "durable._cli", "server", "--db", pg_database, "--redis",
                           redis_url, "--prefix", prefix, "--port", "0", "--interval", "0.05",
                           "--redispatch-after", "1")
        handles = [await client.start(_fleet.fleet_parent, i, id=f"fleet-{i}")
                   for i in range(WORKFLOWS)]
        rng = random.Random(13)
        for _ in range(KILLS):  # a random worker of a random pool, then a replacement
            await asyncio.sleep(1.0)
            pool = rng.choice(sorted(live))
            victim = rng.choice([p for p in live[pool] if not p.killed])
            procs.kill(victim)
            log.append(f"{time.strftime('%X')} SIGKILL {victim.name}")
            start(pool)

        async def all_ended() -> bool:
            rows = await client.list(limit=3 * WORKFLOWS)
            return sum(r.status == "completed" for r in rows) == 2 * WORKFLOWS

        await eventually(all_ended, timeout=180, interval=0.25, what="every workflow to end")
        for i, handle in enumerate(handles):
            assert await handle.result() == _fleet.expected(i)
            check_history(await handle.history())
            check_history(await client.get_handle(f"fleet-child-{i}").history())
        effects = read_effects(tmp_path / "effects.jsonl")
        misplaced = [e for e in effects if (e["kind"], e["name"]) not in _fleet.HOSTED[e["pool"]]]
        assert not misplaced, misplaced
        ran = {(e["pool"], e["kind"], e["name"]) for e in effects}
        assert ran == {(pool, kind, name) for pool, hosted in _fleet.HOSTED.items()
                       for kind, name in hosted}  # every pool did its share
        assert len(log) == KILLS
    finally:
        procs.close()
        await client.close()
        print("\n".join(log))
        print(procs.logs()[-20000:])
