"""Workflows of the end-to-end benchmarks, and the worker process that runs them.

    python -m bench._e2e_flows DB_URL [--redis URL] [--prefix P] [--concurrency N] [--lease S]
        [--plain] [--defaults] [--app N --tenant T --steps S]

Each workflow comes twice: with the fastest documented option (actions with a short
``timeout``, run inline by a worker whose lease is at least twice that) and written the plain
way (``@durable.action`` with no options, run by a ``durable.Worker`` with its defaults: what
the README's tour does). ``flow(name, plain)`` picks one; ``--plain`` runs a default Worker.

``--defaults`` leaves every worker setting but ``--concurrency`` at its default (the
recovery benchmark). ``--app N`` is an embedded application instead: it starts ``N``
``BenchManySteps`` workflows (ids r0, r1, ...; none when 0) in tenant ``T`` and runs a
worker with default settings in the same process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from typing import Any

import durable
from bench import _telemetry as telemetry
from durable._cli._workers import service_gc


@durable.action(timeout=5.0)  # short: the worker runs it inline (its lease is 10 s or more)
async def add_one(n: int) -> int:
    return n + 1


@durable.action(timeout=0.5)  # inline even with the recovery benchmark's 1 s lease
async def pause(seconds: float) -> None:
    await asyncio.sleep(seconds)


@durable.action  # no options: a task of its own on the queue
async def add_one_plain(n: int) -> int:
    return n + 1


@durable.action
async def pause_plain(seconds: float) -> None:
    await asyncio.sleep(seconds)


@durable.workflow(name="BenchOneStep")
async def one_step(ctx: durable.Context, n: int) -> int:
    return await ctx.run(add_one, n)


@durable.workflow(name="BenchThreeSteps")
async def three_steps(ctx: durable.Context, n: int) -> int:
    for _ in range(3):
        n = await ctx.run(add_one, n)
    return n


@durable.workflow(name="BenchManySteps")
async def many_steps(ctx: durable.Context, steps: int, seconds: float) -> int:
    for _ in range(steps):
        await ctx.run(pause, seconds)
    return steps


@durable.workflow(name="BenchLongSteps")
async def long_steps(ctx: durable.Context, steps: int) -> int:
    n = 0
    for _ in range(steps):
        n = await ctx.run(add_one, n)
    return n


# The throughput workflow on task queues of its own, calling an action with limits configured
# far above what the benchmark reaches (bench/e2e.py --queues limits), its own and its queue's
# (QUEUE_LIMITS, on every worker here), or one on a queue without limits (--queues queues):
# what queues and limits cost when they do not bind. A limited action runs inline while its
# limits have room, as the others do.
@durable.action(name="BenchAddOneQueued", timeout=5.0, queue="bench-limited",
                max_concurrent=1_000_000, rate="10000000/s")
async def add_one_queued(n: int) -> int:
    return n + 1


@durable.action(name="BenchAddOneQueuedFree", timeout=5.0, queue="bench-actions")
async def add_one_queued_free(n: int) -> int:
    return n + 1


@durable.action(name="BenchAddOneQueuedPlain", queue="bench-limited",
                max_concurrent=1_000_000, rate="10000000/s")
async def add_one_queued_plain(n: int) -> int:
    return n + 1


@durable.action(name="BenchAddOneQueuedFreePlain", queue="bench-actions")
async def add_one_queued_free_plain(n: int) -> int:
    return n + 1


QUEUE_LIMITS = {"bench-limited": durable.QueueLimit(max_concurrent=1_000_000,
                                                    rate="10000000/s")}


@durable.workflow(name="BenchThreeStepsQueued", queue="bench-flows")
async def three_steps_queued(ctx: durable.Context, n: int, limited: bool) -> int:
    for _ in range(3):
        n = await ctx.run(add_one_queued if limited else add_one_queued_free, n)
    return n


@durable.workflow(name="BenchThreeStepsQueuedPlain", queue="bench-flows")
async def three_steps_queued_plain(ctx: durable.Context, n: int, limited: bool) -> int:
    for _ in range(3):
        n = await ctx.run(add_one_queued_plain if limited else add_one_queued_free_plain, n)
    return n


@durable.workflow(name="BenchOneStepPlain")
async def one_step_plain(ctx: durable.Context, n: int) -> int:
    return await ctx.run(add_one_plain, n)


@durable.workflow(name="BenchThreeStepsPlain")
async def three_steps_plain(ctx: durable.Context, n: int) -> int:
    for _ in range(3):
        n = await ctx.run(add_one_plain, n)
    return n


@durable.workflow(name="BenchManyStepsPlain")
async def many_steps_plain(ctx: durable.Context, steps: int, seconds: float) -> int:
    for _ in range(steps):
        await ctx.run(pause_plain, seconds)
    return steps


FLOWS = {False: {"one": one_step, "three": three_steps, "many": many_steps},
         True: {"one": one_step_plain, "three": three_steps_plain, "many": many_steps_plain}}
WORKFLOWS = [one_step, three_steps, many_steps, long_steps, one_step_plain, three_steps_plain,
             many_steps_plain, three_steps_queued, three_steps_queued_plain]
ACTIONS = [add_one, pause, add_one_plain, pause_plain, add_one_queued, add_one_queued_free,
           add_one_queued_plain, add_one_queued_free_plain]


LIMITED = [add_one_queued, add_one_queued_plain]


def hosted() -> tuple[list[Any], dict[str, durable.QueueLimit] | None]:
    """The actions a benchmark worker hosts and its queue limits: the limited ones only for
    a run that measures limits (``BENCH_LIMITS=1``, which ``bench/e2e.py --queues limits``
    sets), since a worker that hosts limited actions also looks for their tasks as it polls."""
    if os.environ.get("BENCH_LIMITS") == "1":
        return ACTIONS, QUEUE_LIMITS
    return [a for a in ACTIONS if a not in LIMITED], None


def flow(name: str, plain: bool) -> Any:
    """The workflow ``name`` ("one", "three" or "many"): plain or with the fastest option."""
    return FLOWS[plain][name]


# A fixed key: the benchmark's processes must agree on it, and it protects nothing.
_BENCH_KEY = bytes(range(32))


def codec_options() -> dict[str, Any]:
    """``connect(codec=...)`` for ``bench/e2e.py --codec`` (``DURABLE_BENCH_CODEC``, which
    the benchmark's worker processes inherit): ``aesgcm``, ``zlib`` or none."""
    name = os.environ.get("DURABLE_BENCH_CODEC", "")
    if name == "aesgcm":
        return {"codec": durable.AesGcmCodec({"bench": _BENCH_KEY})}
    if name == "zlib":
        return {"codec": durable.ZlibCodec()}
    return {}


def worker(client: durable.Client, plain: bool, concurrency: int,
           lease: float) -> durable.Worker:
    """A Worker with its defaults (``plain``) or with the benchmarks' options. ``BENCH_EAGER=0``
    turns eager actions off (``Worker(eager_actions=False)``), to measure what they bring;
    ``BENCH_DETERMINISM=off`` the run-time determinism guard (default: the worker's, "warn")."""
    eager = os.environ.get("BENCH_EAGER", "1") != "0"
    guard: Any = os.environ.get("BENCH_DETERMINISM", "warn")
    actions, limits = hosted()
    if plain:
        return durable.Worker(client, WORKFLOWS, actions, queue_limits=limits,
                              eager_actions=eager, determinism=guard,
                              **telemetry.worker_options())
    return durable.Worker(client, WORKFLOWS, actions, concurrency=concurrency, lease=lease,
                          poll_interval=0.05, queue_limits=limits, eager_actions=eager,
                          determinism=guard, **telemetry.worker_options())


async def run_worker(url: str, redis: str | None, prefix: str, concurrency: int,
                     lease: float | None, standby: str | None = None,
                     plain: bool = False) -> None:
    """Run a worker; with ``standby`` (a path), connected but idle until that file exists.
    Without ``lease``, every setting but ``concurrency`` is the default."""
    options: dict[str, Any] = {} if not redis else {"redis_url": redis, "prefix": prefix}
    options.update(codec_options())
    settings: dict[str, Any] = {} if lease is None else {"lease": lease, "poll_interval": 0.05}
    async with durable.connect(url, **options) as client:
        await client.store.get_execution("", "")  # connected: the store is open
        while standby is not None and not os.path.exists(standby):
            await asyncio.sleep(0.005)
        if plain:
            await worker(client, plain, concurrency, 0.0).run()
            return
        actions, limits = hosted()
        await durable.Worker(client, WORKFLOWS, actions, concurrency=concurrency,
                             queue_limits=limits, **settings,
                             **telemetry.worker_options()).run()


RECOVERY_STEP = 0.02  # seconds each step of the recovery workflows sleeps


async def run_app(url: str, tenant: str, start: int, steps: int, concurrency: int,
                  plain: bool) -> None:
    """An embedded application: start ``start`` workflows, run them (default settings but
    ``concurrency``); ``plain``: their actions are plain ``@durable.action`` ones, and every
    worker setting is the default, ``concurrency`` too, else they run inline."""
    async with durable.connect(url, tenant=tenant) as client:
        actions, limits = hosted()
        options = {} if plain else {"concurrency": concurrency}
        async with durable.Worker(client, WORKFLOWS, actions, queue_limits=limits, **options):
            await asyncio.gather(*(client.start(flow("many", plain), steps, RECOVERY_STEP,
                                                id=f"r{i}")
                                   for i in range(start)))
            await asyncio.Event().wait()  # until killed


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--redis", default=None)
    parser.add_argument("--prefix", default="durable")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--lease", type=float, default=10.0)
    parser.add_argument("--defaults", action="store_true",
                        help="default worker settings (but --concurrency)")
    parser.add_argument("--standby", default=None, metavar="PATH",
                        help="stay idle (connected) until PATH exists")
    parser.add_argument("--plain", action="store_true",
                        help="a Worker with its defaults (--concurrency and --lease ignored)")
    parser.add_argument("--app", type=int, default=None, metavar="N",
                        help="an embedded application that starts N workflows")
    parser.add_argument("--tenant", default="default")
    parser.add_argument("--steps", type=int, default=20)
    a = parser.parse_args()
    main = run_worker(a.url, a.redis, a.prefix, a.concurrency,
                      None if a.defaults else a.lease, a.standby, a.plain) if a.app is None \
        else run_app(a.url, a.tenant, a.app, a.steps, a.concurrency, a.plain)
    if a.app is None:  # a worker process tunes its collector as `durable worker` does
        service_gc()
    try:
        import uvloop

        uvloop.run(main)
    except ImportError:
        asyncio.run(main)
