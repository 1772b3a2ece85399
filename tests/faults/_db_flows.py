"""Workflows with database actions for the SIGKILL tests (PostgreSQL), and their worker:
``python -m tests.faults._db_flows DB_URL``."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

import asyncpg

import durable

LEASE = 1.0
LEDGER = ("CREATE TABLE ledger (workflow_id text NOT NULL, cmd integer NOT NULL, "
          "attempt integer NOT NULL)")


@durable.action(name="db_kill_ledger", transaction=True, isolation="serializable",
                retry=durable.Retry(attempts=20, initial=0.05, maximum=0.2))
async def ledger_entry(conn: asyncpg.Connection, n: int) -> int:
    """Write one ledger row, dawdle inside the transaction, and, for ``n < 0`` on the first
    attempt, die by SIGKILL after the write (before the commit)."""
    info = durable.action_info()
    await conn.execute("INSERT INTO ledger VALUES ($1, $2, $3)", info.workflow_id, abs(n),
                       info.attempt)
    await conn.execute("SELECT pg_sleep(0.2)")  # long enough for the kills to land in one
    if n < 0 and info.attempt == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return abs(n)


@durable.workflow(name="DbKillFlow")
async def ledger_flow(ctx: durable.Context, steps: list[int]) -> int:
    total = 0
    for n in steps:
        total += await ctx.run(ledger_entry, n)
    return total


async def main(url: str) -> None:
    async with durable.connect(url) as client:
        worker = durable.Worker(client, workflows=[ledger_flow], actions=[ledger_entry],
                                lease=LEASE, poll_interval=0.05, concurrency=20)
        await worker.run()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s pid=%(process)d %(name)s %(levelname)s %(message)s")
    asyncio.run(main(sys.argv[1]))
