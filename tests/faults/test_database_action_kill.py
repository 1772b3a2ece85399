"""Database actions survive SIGKILLed workers with their effect exactly once (PostgreSQL).

A worker killed inside the action's transaction (after its write, before the commit) leaves
neither the write nor a completion: the next worker's attempt writes once. Workers killed at
random moments, around the commit among them, never leave a ledger row twice or lose one.
"""

from __future__ import annotations

import random
from pathlib import Path

import asyncpg
import pytest

import durable
from _support import eventually

from . import _db_flows
from ._procs import WorkerProcs, make_procs

pytestmark = [pytest.mark.faults, pytest.mark.integration]


async def rows(url: str) -> list[tuple[str, int, int]]:
    conn = await asyncpg.connect(url)
    try:
        return [tuple(r) for r in await conn.fetch(  # type: ignore[misc]
            "SELECT workflow_id, cmd, attempt FROM ledger ORDER BY workflow_id, cmd")]
    finally:
        await conn.close()


async def prepared(url: str) -> durable.Client:
    client = await durable.connect(url)  # creates durable's schema
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(_db_flows.LEDGER)  # the user's table, in the same database
    finally:
        await conn.close()
    return client


def worker(procs: WorkerProcs, name: str) -> None:
    procs.start_module(name, "tests.faults._db_flows", procs.url)


async def test_a_worker_killed_inside_the_transaction_leaves_nothing(
        tmp_path: Path, pg_database: str) -> None:
    procs = make_procs(tmp_path, pg_database)
    client = await prepared(pg_database)
    try:
        handle = await client.start(_db_flows.ledger_flow, [-7], id="killed")
        worker(procs, "first")
        await eventually(lambda: procs.procs[0].popen.poll() is not None, what="its SIGKILL")
        procs.procs[0].killed = True
        assert await rows(pg_database) == []  # the write died with the transaction
        worker(procs, "second")
        assert await handle.result(timeout=30) == 7
        assert await rows(pg_database) == [("killed", 7, 2)]  # once, by the next attempt
    finally:
        procs.close()
        print(procs.logs())
        await client.close()


async def test_workers_killed_at_random_never_duplicate_or_lose_an_effect(
        tmp_path: Path, pg_database: str) -> None:
    procs = make_procs(tmp_path, pg_database)
    client = await prepared(pg_database)
    flows, steps = 20, [1, 2, 3, 4, 5, 6]
    try:
        handles = [await client.start(_db_flows.ledger_flow, steps, id=f"flow-{i:02}")
                   for i in range(flows)]
        for n in range(2):
            worker(procs, f"w{n}")
        # The first kill lands while transactions are open: the work is under way.
        await eventually(lambda: rows(pg_database), what="the first ledger rows")
        chaos = random.Random(7)
        seen, total = len(await rows(pg_database)), flows * len(steps)
        for kill in range(8):  # a SIGKILL every ~0.15 s, each replaced by a new worker
            live = [p for p in procs.procs if not p.killed]
            procs.kill(chaos.choice(live))
            worker(procs, f"w{kill + 2}")
            await _pause(0.15)
            if seen < total:  # on a loaded machine, let the next kill land on work under way
                seen = await eventually(lambda: _more_rows(pg_database, seen), timeout=60,
                                        what="ledger rows written since the last kill")
        results = [await h.result(timeout=60) for h in handles]
        procs.assert_running()
    finally:
        procs.close()
        print(procs.logs())
        await client.close()
    assert results == [sum(steps)] * flows
    ledger = await rows(pg_database)
    entries = [(w, cmd) for w, cmd, _ in ledger]
    assert entries == sorted({(f"flow-{i:02}", n) for i in range(flows) for n in steps})
    assert max(attempt for _, _, attempt in ledger) >= 2  # kills did interrupt attempts


async def _more_rows(url: str, than: int) -> int:
    """How many ledger rows there are, if more than ``than``; else 0."""
    count = len(await rows(url))
    return count if count > than else 0


async def _pause(seconds: float) -> None:
    """Let the workers run for a while between kills (a deliberate interval, not a wait)."""
    import asyncio

    await asyncio.sleep(seconds)
