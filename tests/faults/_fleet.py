"""A fleet of worker pools for the queue fault test, and one pool's worker process:
``python -m tests.faults._fleet DB_URL --pool NAME --redis URL --prefix P``.

Pools: ``flows`` hosts the parent workflow (queue "flows") and no action; ``a`` hosts action
``FleetA`` (queue "a"); ``b`` hosts action ``FleetB`` and the child workflow (queue "b"). Every
action attempt, and every workflow task a pool runs, is logged with the pool's name to the
effects file, so the test can check that each ran only where it is hosted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import time
from typing import Any

import durable
from durable._stores import WorkflowTask
from durable._worker._workflow_tasks import WorkflowTaskRunner

from ._flows import EFFECTS_ENV

POOL_ENV = "DURABLE_FLEET_POOL"
LEASE = 1.0
_RETRY = durable.Retry(attempts=20, initial=0.05, maximum=0.5)


def record(line: dict[str, Any]) -> None:
    line = {**line, "pool": os.environ.get(POOL_ENV, "?"), "pid": os.getpid(), "time": time.time()}
    fd = os.open(os.environ[EFFECTS_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(line, sort_keys=True) + "\n").encode())
    finally:
        os.close(fd)


async def _act(kind: str, i: int, n: int) -> str:
    info = durable.action_info()
    record({"kind": "action", "name": info.action, "key": info.idempotency_key,
            "workflow_id": info.workflow_id, "args": [i, n]})
    await asyncio.sleep(0.05)
    return f"{kind}{i}.{n}"


@durable.action(name="FleetA", queue="a", retry=_RETRY, timeout=30.0, inline=False)
async def fleet_a(i: int, n: int) -> str:
    return await _act("a", i, n)


@durable.action(name="FleetB", queue="b", retry=_RETRY, timeout=30.0, inline=False)
async def fleet_b(i: int, n: int) -> str:
    return await _act("b", i, n)


@durable.workflow(name="FleetChild", queue="b")
async def fleet_child(ctx: durable.Context, i: int) -> str:
    return await ctx.run(fleet_b, i, 4)


@durable.workflow(name="FleetParent", queue="flows")
async def fleet_parent(ctx: durable.Context, i: int) -> list[str]:
    done = [await ctx.run(fleet_a, i, 1), await ctx.run(fleet_b, i, 2)]
    done.append(await (await ctx.start_child(fleet_child, i, id=f"fleet-child-{i}")))
    await ctx.sleep(0.3)
    done.append(await ctx.run(fleet_a, i, 3))
    return done


def expected(i: int) -> list[str]:
    return [f"a{i}.1", f"b{i}.2", f"b{i}.4", f"a{i}.3"]


POOLS: dict[str, tuple[list[Any], list[Any]]] = {
    "flows": ([fleet_parent], []), "a": ([], [fleet_a]), "b": ([fleet_child], [fleet_b])}
# What each pool may run: (kind, name)
HOSTED: dict[str, set[tuple[str, str]]] = {
    "flows": {("workflow", "FleetParent")}, "a": {("action", "FleetA")},
    "b": {("action", "FleetB"), ("workflow", "FleetChild")}}


def _log_workflow_tasks() -> None:
    """Log every workflow task this process runs (test instrumentation)."""
    run = WorkflowTaskRunner.run

    async def logged(self: WorkflowTaskRunner, task: WorkflowTask) -> None:
        record({"kind": "workflow", "name": task.workflow, "queue": task.queue,
                "workflow_id": task.workflow_id})
        await run(self, task)

    WorkflowTaskRunner.run = logged  # type: ignore[method-assign]


async def main(url: str, pool: str, redis_url: str, prefix: str) -> None:
    os.environ[POOL_ENV] = pool
    _log_workflow_tasks()
    workflows, actions = POOLS[pool]
    async with durable.connect(url, redis_url=redis_url, prefix=prefix) as client:
        worker = durable.Worker(client, workflows, actions, lease=LEASE, poll_interval=0.05,
                                concurrency=50)
        await worker.run()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--pool", required=True, choices=sorted(POOLS))
    parser.add_argument("--redis", required=True)
    parser.add_argument("--prefix", required=True)
    options = parser.parse_args()
    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s pid=%(process)d %(name)s %(levelname)s %(message)s")
    asyncio.run(main(options.url, options.pool, options.redis, options.prefix))
