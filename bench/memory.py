"""Memory: bytes per cached idle workflow instance, and per decoded history event.

    .venv/bin/python bench/memory.py [--instances 10000] [--events 100000]

An idle instance is what a worker's sticky cache holds: a workflow that ran a few steps and
now waits for an external event. Measured two ways: Python allocations (tracemalloc) and the
process's resident set size (RSS, from /proc), before and after creating them.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import durable  # noqa: E402
from bench._shapes import record  # noqa: E402
from durable._definitions import workflow_definition  # noqa: E402
from durable._history import ActionCompleted, WorkflowStarted, decode_event  # noqa: E402
from durable._replay import WorkflowInstance  # noqa: E402


@durable.action
async def lookup(customer: str) -> dict[str, str]:
    return {"customer": customer, "tier": "gold"}


@durable.workflow(name="BenchIdle")
async def idle(ctx: durable.Context, customer: str) -> str:
    ctx.set_state("looking up")
    profile = await ctx.run(lookup, customer)
    ctx.data["tier"] = profile["tier"]
    ctx.set_state("waiting for approval")
    decision = await ctx.wait_for("Approve", "Reject", timeout=86_400)
    return "expired" if decision is None else decision.name


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def idle_instances(n: int) -> list[WorkflowInstance]:
    defn = workflow_definition(idle)
    instances = []
    for i in range(n):
        started = WorkflowStarted(1, 0.0, defn.name, defn.version, f"wf-{i}", f"run-{i}", "t",
                                  [f"customer-{i}"])
        instance = WorkflowInstance(defn, started)
        first = instance.activate([started], 1_000.0)
        done = ActionCompleted(4, 1_000.0, first.commands[1].cmd, {"customer": "c", "tier": "gold"})
        instance.activate([done], 1_001.0)
        instances.append(instance)
    return instances


def measure(label: str, make: object, count: int, unit: str) -> None:
    gc.collect()
    rss0 = rss()
    tracemalloc.start()
    held = make()  # type: ignore[operator]
    gc.collect()
    traced, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    gc.collect()
    rss1 = rss()
    print(f"{label:34} {count:>9,} {traced / count:>12,.0f} {(rss1 - rss0) / count:>12,.0f} "
          f" bytes/{unit}")
    del held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    print(f"{'what':34} {'count':>9} {'tracemalloc':>12} {'RSS':>12}")
    measure("cached idle workflow instance", lambda: idle_instances(args.instances),
            args.instances, "instance")
    _, blobs = record("sequential", args.events // 3)
    measure("decoded history event", lambda: [decode_event(b) for b in blobs], len(blobs),
            "event")
    per_instance = rss()
    print(f"\ntargets: an idle cached instance < 20 KB; 10,000 of them < 300 MB "
          f"(this process's RSS is now {per_instance / 2**20:,.0f} MB)")


if __name__ == "__main__":
    main()
