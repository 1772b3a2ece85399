"""Limited actions for the flow-control tests, and a worker process that hosts them:
``python -m tests.faults._limited DB_URL [--redis URL --prefix P]``. Every attempt logs its start
and end (one ``write`` each, in order across processes) to the effects file.

Queues ``fleet-five`` (at most 5 at once) and ``fleet-rate`` (50 starts per second) each hold
two actions: one queued (no timeout), one short enough to run inline (under the worker's
holds, ``durable._worker._holds``)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time

import durable

from ._flows import EFFECTS_ENV


def log(phase: str, action: str) -> None:
    line = json.dumps({"phase": phase, "action": action, "time": time.time(),
                       "pid": os.getpid()}) + "\n"
    fd = os.open(os.environ[EFFECTS_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


@durable.action(name="LimitedFive", max_concurrent=5)
async def five(i: int) -> int:
    log("start", "five")
    await asyncio.sleep(0.05)
    log("end", "five")
    return i


@durable.action(name="LimitedRate", rate="50/s")
async def rated(i: int) -> int:
    log("start", "rated")
    return i


@durable.action(name="QueueFiveQueued", queue="fleet-five")
async def five_queued(i: int) -> int:
    log("start", "qfive")
    await asyncio.sleep(0.05)
    log("end", "qfive")
    return i


@durable.action(name="QueueFiveInline", queue="fleet-five", timeout=2.0)
async def five_inline(i: int) -> int:
    log("start", "qfive")
    await asyncio.sleep(0.05)
    log("end", "qfive")
    return i


@durable.action(name="QueueRateQueued", queue="fleet-rate")
async def rate_queued(i: int) -> int:
    log("start", "qrate")
    return i


@durable.action(name="QueueRateInline", queue="fleet-rate", timeout=2.0)
async def rate_inline(i: int) -> int:
    log("start", "qrate")
    return i


QUEUE_LIMITS = {"fleet-five": durable.QueueLimit(max_concurrent=5),
                "fleet-rate": durable.QueueLimit(rate="50/s")}
ACTIONS = [five, rated, five_queued, five_inline, rate_queued, rate_inline]


@durable.workflow(name="LimitedFanOutTwo")
async def fan_out_two(ctx: durable.Context, actions: list[str], n: int) -> int:
    """``n`` calls at once, taking turns between the actions."""
    calls = (ctx.run(actions[i % len(actions)], i) for i in range(n))
    return sum(await asyncio.gather(*calls))


@durable.workflow(name="LimitedFanOut")
async def fan_out(ctx: durable.Context, action: str, n: int) -> int:
    results = await asyncio.gather(*(ctx.run(action, i) for i in range(n)))
    return sum(results)


async def main(url: str, redis_url: str | None, prefix: str) -> None:
    options = {} if redis_url is None else {"redis_url": redis_url, "prefix": prefix}
    async with durable.connect(url, **options) as client:  # type: ignore[arg-type]
        worker = durable.Worker(client, [fan_out, fan_out_two], ACTIONS, lease=5.0,
                                poll_interval=0.02, concurrency=50, queue_limits=QUEUE_LIMITS)
        await worker.run()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--redis", default=None)
    parser.add_argument("--prefix", default="durable")
    options = parser.parse_args()
    asyncio.run(main(options.url, options.redis, options.prefix))
