"""Priority on PostgreSQL + Redis: workflows queued in the database without hints (their
producer writes only to the database, or Redis lost the hints) are announced by the server's
outbox higher priority first, so a worker with concurrency 1 runs them in priority order."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

import durable
from durable_server import Server

RAN: list[str] = []  # workflow ids, in the order their first task ran


@durable.workflow(name="PrioOrdered")
async def ordered(ctx: durable.Context) -> int:
    if ctx.info.workflow_id not in RAN:
        RAN.append(ctx.info.workflow_id)
    return ctx.info.priority


async def announced(dsn: str, tenant: str, count: int) -> None:
    """Wait until the outbox has announced ``count`` tasks of ``tenant`` (their dispatch time
    moved past their creation)."""
    conn = await asyncpg.connect(dsn)
    try:
        for _ in range(500):
            done = await conn.fetchval(
                "SELECT count(*) FROM workflow_tasks AS w JOIN executions AS x USING "
                "(tenant, workflow_id) WHERE w.tenant = $1 AND w.dispatched_at > x.created_at",
                tenant)
            if done >= count:
                return
            await asyncio.sleep(0.02)
        raise AssertionError("the outbox did not announce the queued workflows")
    finally:
        await conn.close()


async def test_a_worker_of_concurrency_one_runs_queued_workflows_by_priority(
        pg_database: str, redis_url: str, redis_prefix: str) -> None:
    tenant = "prio-redis"
    priorities = {"p0": 0, "p3": 3, "p1": 1, "p5": 5, "n2": -2, "p4": 4}
    redis: dict[str, Any] = {"redis_url": redis_url, "prefix": redis_prefix, "partitions": 1}
    async with durable.connect(pg_database, tenant=tenant) as producer:  # no hints
        for workflow_id, priority in priorities.items():
            await producer.start(ordered, id=workflow_id, priority=priority)
    async with durable.connect(pg_database, tenant=tenant, **redis) as server_client, \
            Server(server_client, interval=0.02, redispatch_after=0.0, port=0):
        await announced(pg_database, tenant, len(priorities))
    # The server stops first: an announcement it makes while the worker claims would hold
    # that row's lock, the claim would skip it, and its task would run after the others.
    async with durable.connect(pg_database, tenant=tenant, **redis) as client, \
            durable.Worker(client, [ordered], concurrency=1, poll_interval=0.02):
        results = [await client.get_handle(w).result(timeout=30) for w in priorities]
    assert results == list(priorities.values())
    assert RAN == sorted(priorities, key=lambda w: -priorities[w])
