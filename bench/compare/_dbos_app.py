"""The DBOS Transact side of ``dbos_e2e.py``: one process per measurement, so DBOS's global
state starts clean and a SIGKILL takes the whole executor down.

    python -m bench.compare._dbos_app throughput DB_URL [--workflows 2000]
    python -m bench.compare._dbos_app latency    DB_URL [--samples 200]
    python -m bench.compare._dbos_app start      DB_URL [--workflows 200] [--steps 20]
    python -m bench.compare._dbos_app resume     DB_URL

``throughput`` and ``latency`` print one JSON line with their numbers. ``start`` starts the
recovery workflows and keeps running them until it is killed; ``resume`` launches DBOS on the
same database (DBOS recovers the pending workflows of executor ``local`` at launch) and runs
until it is killed. The workflows mirror ``bench/_e2e_flows.py``.
"""

from __future__ import annotations

import argparse
import json
import threading
import time

from dbos import DBOS, DBOSConfig

# Set when every recovery workflow has been started, so that all are in flight together (as a
# durable worker runs them); always set in a process that resumes them after the SIGKILL.
GO = threading.Event()
GO.set()


@DBOS.step()
def add_one(n: int) -> int:
    return n + 1


@DBOS.step()
def pause(seconds: float) -> None:
    GO.wait()
    time.sleep(seconds)


@DBOS.workflow(name="BenchThreeSteps")
def three_steps(n: int) -> int:
    for _ in range(3):
        n = add_one(n)
    return n


@DBOS.workflow(name="BenchManySteps")
def many_steps(steps: int, seconds: float) -> int:
    for _ in range(steps):
        pause(seconds)
    return steps


def launch(db: str) -> None:
    config: DBOSConfig = {"name": "durable-bench", "system_database_url": db,
                          "log_level": "WARNING"}
    DBOS(config=config)
    DBOS.launch()


def throughput(workflows: int) -> dict[str, float]:
    for i in range(20):  # warm up
        assert DBOS.start_workflow(three_steps, i).get_result() == i + 3
    t0 = time.perf_counter()
    handles = [DBOS.start_workflow(three_steps, i) for i in range(workflows)]
    for i, handle in enumerate(handles):
        assert handle.get_result() == i + 3
    seconds = time.perf_counter() - t0
    return {"workflows_per_s": workflows / seconds, "steps_per_s": 3 * workflows / seconds,
            "seconds": seconds}


def latency(samples: int) -> dict[str, float]:
    times = []
    for i in range(10 + samples):
        t0 = time.perf_counter()
        assert DBOS.start_workflow(three_steps, i).get_result() == i + 3
        times.append(time.perf_counter() - t0)
    times = sorted(times[10:])
    return {"p50": times[len(times) // 2], "p99": times[min(int(len(times) * 0.99), len(times) - 1)],
            "mean": sum(times) / len(times)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["throughput", "latency", "start", "resume"])
    parser.add_argument("db")
    parser.add_argument("--workflows", type=int, default=None)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=0.02)
    args = parser.parse_args()
    launch(args.db)
    if args.what == "throughput":
        print(json.dumps(throughput(args.workflows or 2000)), flush=True)
    elif args.what == "latency":
        print(json.dumps(latency(args.samples)), flush=True)
    else:
        if args.what == "start":
            GO.clear()
            for _ in range(args.workflows or 200):
                DBOS.start_workflow(many_steps, args.steps, args.seconds)
            GO.set()
        print("running", flush=True)
        threading.Event().wait()  # until SIGKILLed
    DBOS.destroy()


if __name__ == "__main__":
    main()
