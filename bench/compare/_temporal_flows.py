"""Temporal workflows of the comparison benchmarks (the shapes of ``bench/_shapes.py`` and the
3-step workflow of ``bench/_e2e_flows.py``), and a worker process that runs them.

    python -m bench.compare._temporal_flows ADDRESS TASK_QUEUE [--max-concurrent N]
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import timedelta

from temporalio import activity, workflow

FANOUT = 100
TIMEOUT = timedelta(seconds=60)


@activity.defn
async def step(i: int) -> int:
    return i


@activity.defn
async def add_one(n: int) -> int:
    return n + 1


@workflow.defn(name="BenchSequential")
class Sequential:
    @workflow.run
    async def run(self, n: int) -> int:
        total = 0
        for i in range(n):
            total += await workflow.execute_activity(step, i, start_to_close_timeout=TIMEOUT)
        return total


@workflow.defn(name="BenchTimers")
class Timers:
    @workflow.run
    async def run(self, n: int, seconds: float) -> int:
        for _ in range(n):
            await workflow.sleep(seconds)
        return n


@workflow.defn(name="BenchEvents")
class Events:
    def __init__(self) -> None:
        self.total = 0
        self.received = 0

    @workflow.signal
    def tick(self, payload: int) -> None:
        self.total += payload
        self.received += 1

    @workflow.query
    def count(self) -> int:
        return self.received

    @workflow.run
    async def run(self, n: int) -> int:
        for i in range(n):
            await workflow.wait_condition(lambda i=i: self.received > i)  # type: ignore[misc]
        return self.total


@workflow.defn(name="BenchFanout")
class Fanout:
    @workflow.run
    async def run(self, n: int) -> int:
        total = 0
        for r in range(max(n // FANOUT, 1)):
            results = await asyncio.gather(*(
                workflow.execute_activity(step, r * FANOUT + i, start_to_close_timeout=TIMEOUT)
                for i in range(FANOUT)))
            total += sum(results)
        return total


@workflow.defn(name="BenchThreeSteps")
class ThreeSteps:
    @workflow.run
    async def run(self, n: int) -> int:
        for _ in range(3):
            n = await workflow.execute_activity(add_one, n, start_to_close_timeout=TIMEOUT)
        return n


WORKFLOWS = [Sequential, Timers, Events, Fanout, ThreeSteps]
ACTIVITIES = [step, add_one]
SHAPES = {"sequential": Sequential, "timers": Timers, "events": Events, "fanout": Fanout}


async def run_worker(address: str, task_queue: str, max_concurrent: int) -> None:
    from temporalio.client import Client
    from temporalio.worker import Worker

    client = await Client.connect(address)
    worker = Worker(client, task_queue=task_queue, workflows=WORKFLOWS, activities=ACTIVITIES,
                    max_concurrent_activities=max_concurrent,
                    max_concurrent_workflow_tasks=max_concurrent)
    print("ready", flush=True)
    await worker.run()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("address")
    parser.add_argument("task_queue")
    parser.add_argument("--max-concurrent", type=int, default=100)
    a = parser.parse_args()
    asyncio.run(run_worker(a.address, a.task_queue, a.max_concurrent))
