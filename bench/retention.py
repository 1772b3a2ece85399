"""Retention under steady load: the database stays the same size once executions expire.

    PYTHONPATH=$PWD .venv/bin/python bench/retention.py [--db URL] [--minutes 10] [--rate 20]
        [--retention 60] [--gc-every 10] [--embedded]

Without ``--db`` it starts a throwaway PostgreSQL of its own (``scripts/with_servers.py``, as
the soak does) with PostgreSQL's default autovacuum; or give it a fresh database (``createdb``;
``sqlite:///path.db``). A PostgreSQL server with autovacuum off (the shared CI server here)
never reclaims dead rows, deleted or updated: its size grows whatever retention does (the
header says which). It starts workflows at
``--rate`` per second for ``--minutes``: ``RetBench`` runs three actions, keeps a 1 KiB blob in
``ctx.data``, sets its state twice and answers an update, so every kind of row an execution
has is written. A worker runs them and a ``durable server`` in the same process deletes
executions closed more than ``--retention`` seconds ago (``--embedded``: the worker's own
dispatcher does, as when no server runs). Each minute it prints how many were started, how
many executions the store holds, how many were deleted so far and the database size:
``pg_database_size`` on PostgreSQL (autovacuum reuses the space of deleted rows), the file
and its WAL on SQLite (freed pages are reused). With a 1-minute retention the size grows for
the first minutes (until autovacuum has visited the tables) and then stays flat; the last
line compares the last minute's size with the third's, and the largest from the third on with
the smallest.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import durable
from durable._dispatch import LocalDispatcher
from durable._stores import open_store
from durable.errors import DurableError
from durable_server import Server

BLOB = "x" * 1024


@durable.action(name="ret_bench_step")
def step(n: int) -> int:
    return n + 1


@durable.workflow(name="RetBench")
async def ret_bench(ctx: durable.Context, n: int) -> int:
    ctx.set_state("working")
    ctx.data["blob"] = BLOB
    seen = 0

    @ctx.on_update("poke")
    def poke() -> int:
        return seen

    for _ in range(3):
        n = await ctx.run(step, n)
        seen += 1
    ctx.set_state("done")
    return n


async def size(client: durable.Client, url: str) -> int:
    """The database's size in bytes."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
        return sum(os.path.getsize(p) for p in (path, f"{path}-wal") if os.path.exists(p))
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT pg_database_size(current_database())"))
    finally:
        await conn.close()


async def held(client: durable.Client) -> int:
    """Executions in the store (any status, every tenant)."""
    count, after = 0, None
    while page := await client.store.scan_executions(after=after, limit=5000):
        count, after = count + len(page), page[-1]
    return count


async def load(client: durable.Client, rate: float, until: float, started: list[int]) -> None:
    """Start ``rate`` workflows a second until ``until``, updating one in ten."""
    n, begun = 0, time.monotonic()
    while time.monotonic() < until:
        handle = await client.start(ret_bench, n, id=f"rb-{n}")
        started[0] = n + 1
        if n % 10 == 0:
            try:
                await handle.update("poke", timeout=5)
            except DurableError:
                pass  # it ended first: the update is refused, nothing to keep
        n += 1
        await asyncio.sleep(max(0.0, begun + n / rate - time.monotonic()))


async def autovacuum(url: str) -> str:
    """``autovacuum on``/``off`` of a PostgreSQL server; "" for SQLite."""
    if url.startswith("sqlite:"):
        return ""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return f", autovacuum {await conn.fetchval('SHOW autovacuum')}"
    finally:
        await conn.close()


async def run(opts: argparse.Namespace) -> None:
    store = await open_store(opts.db)
    dispatcher = LocalDispatcher(store, retention=opts.retention, gc_every=opts.gc_every) \
        if opts.embedded else LocalDispatcher(store, fire_timers=False)
    client = durable.Client(store, dispatcher=dispatcher)
    server: Any = None if opts.embedded else Server(client, port=0, retention=opts.retention,
                                                   gc_every=opts.gc_every)
    worker = durable.Worker(client, [ret_bench], [step], concurrency=50)
    started = [0]
    print(f"retention {opts.retention:g}s, sweep every {opts.gc_every:g}s by "
          f"{'the worker' if opts.embedded else 'durable server'}, {opts.rate:g} workflows/s, "
          f"{opts.db.split(':')[0]}{await autovacuum(opts.db)}")
    print("min  started  held  deleted  db-MiB")
    sizes: list[int] = []
    async with worker:
        if server is not None:
            await server.__aenter__()
        try:
            until = time.monotonic() + opts.minutes * 60
            loader = asyncio.create_task(load(client, opts.rate, until, started))
            for minute in range(1, opts.minutes + 1):
                await asyncio.sleep(max(0.0, until - (opts.minutes - minute) * 60
                                        - time.monotonic()))
                sizes.append(await size(client, opts.db))
                now_held = await held(client)
                print(f"{minute:>3}  {started[0]:>7}  {now_held:>5}  {started[0] - now_held:>7}  "
                      f"{sizes[-1] / 2**20:>6.1f}", flush=True)
            await loader
        finally:
            if server is not None:
                await server.__aexit__(None, None, None)
    await client.close()
    steady = sizes[2:] or sizes
    print(f"size at minute {len(sizes)} / minute {len(sizes) - len(steady) + 1}: "
          f"{sizes[-1] / steady[0]:.2f}; largest / smallest from then on: "
          f"{max(steady) / min(steady):.2f}")


def throwaway_postgres() -> tuple[Any, str]:
    """A PostgreSQL of its own, default settings but durability (see the soak's rig)."""
    from bench._soak_rig import _with_servers

    root = Path(tempfile.mkdtemp(prefix="durable-retention-"))
    root.chmod(0o755)  # under root PostgreSQL runs as `nobody`, and must reach it
    (root / "pg").mkdir()
    pg = _with_servers().Postgres(root / "pg")
    return pg, pg.start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="a fresh database (PostgreSQL or SQLite); default: a "
                        "throwaway PostgreSQL")
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--rate", type=float, default=20.0, help="workflows started per second")
    parser.add_argument("--retention", type=float, default=60.0, help="seconds")
    parser.add_argument("--gc-every", type=float, default=10.0, help="seconds between sweeps")
    parser.add_argument("--embedded", action="store_true",
                        help="the worker sweeps (no server), as with the embedded default")
    opts = parser.parse_args()
    pg = None
    if opts.db is None:
        pg, opts.db = throwaway_postgres()
    try:
        asyncio.run(run(opts))
    finally:
        if pg is not None:
            pg.stop()
            shutil.rmtree(pg.root.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
