"""What telemetry costs end to end: ``bench/e2e.py throughput`` with metrics and tracing off
and on, alternating in the same run, each on a fresh database.

    .venv/bin/python bench/telemetry.py [--rounds 3] [--workflows 1000] [--concurrency 100]
                                        [--paths plain fastest] [--sample RATIO]
                                        [--part metrics|traces]

"On" is ``DURABLE_BENCH_TELEMETRY=1`` (``bench/_telemetry.py``): every worker serves
Prometheus metrics (``Worker(metrics_port=0)``) and every process has an OpenTelemetry SDK
tracer provider with the batch processor, so every span durable makes is made, ended and
batched (``--sample 0.1``: a tenth of the executions, sampled at the head), or with
``--part metrics`` / ``--part traces`` one of the two only. Setups: SQLite with the worker in
the client's process, and PostgreSQL + Redis with a worker process and ``durable server``
(when ``DURABLE_PG_DSN`` and ``DURABLE_REDIS_URL`` are set; each run gets a database of its
own, created and dropped by ``bench/_databases.py``). Prints the median
action steps/s of each and the ratio on/off (the target: on >= 0.9 x off), for the default
path first (``plain``: plain ``@durable.action``, every worker setting at its default) and then
the fastest documented one (``fastest``: short actions run inline), and the CPU time
the benchmark's processes used per workflow (client and workers, not PostgreSQL or Redis):
on a machine shared with other work, throughput swings from run to run, CPU time much less.
The CPU time per workflow is marginal: a run of 1 workflow (start-up, imports, warm-up) is
measured too, and its CPU time taken off, so the SDK's import is not counted per workflow.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._databases import throwaway  # noqa: E402 - after ROOT is on the path

_STEPS = re.compile(r"([\d,]+) action steps/s")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # reaped children and theirs
    return usage.ru_utime + usage.ru_stime


def _measured(setup: str, plain: bool, on: bool,
              args: argparse.Namespace) -> tuple[float, float]:
    """Action steps/s of a run of ``args.workflows``, and its CPU ms per workflow beyond a run
    of one (each on a fresh database)."""
    steps, cpu = _fresh(setup, plain, on, args, args.workflows)
    _, fixed = _fresh(setup, plain, on, args, 1)
    cpu_ms = (cpu - fixed) * 1e3 / (args.workflows - 1)
    print(f"      cpu {cpu_ms:.2f} ms/workflow", flush=True)
    return steps, cpu_ms


def _fresh(setup: str, plain: bool, on: bool, args: argparse.Namespace,
           workflows: int) -> tuple[float, float]:
    embedded = setup == "sqlite"  # the worker in the client's process; else PostgreSQL + Redis
    with throwaway("sqlite:" if embedded else os.environ["DURABLE_PG_DSN"]) as url:
        return _run(url, "" if embedded else os.environ["DURABLE_REDIS_URL"], embedded, plain,
                    on, args, workflows)


def _run(db: str, redis: str, embedded: bool, plain: bool, on: bool,
         args: argparse.Namespace, workflows: int) -> tuple[float, float]:
    """Action steps/s, and the CPU seconds of its processes, of one run."""
    env = dict(os.environ, PYTHONPATH=str(ROOT),
               DURABLE_BENCH_TELEMETRY=(args.part if on else "0"))
    if args.sample is not None:
        env["DURABLE_BENCH_SAMPLE"] = str(args.sample)
    command = [sys.executable, "bench/e2e.py", "throughput", "--db", db, "--redis", redis,
               "--workflows", str(workflows), "--concurrency", str(args.concurrency)]
    cpu = _cpu()
    options = [*(["--embedded"] if embedded else []), *(["--plain"] if plain else [])]
    done = subprocess.run([*command, *options], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=1800)
    cpu = _cpu() - cpu
    found = _STEPS.search(done.stdout)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    if workflows > 1:
        print(f"  {'on ' if on else 'off'} {done.stdout.strip()}", flush=True)
    return float(found.group(1).replace(",", "")), cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workflows", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--only", choices=["sqlite", "postgres"], default=None)
    parser.add_argument("--paths", nargs="+", choices=["plain", "fastest"],
                        default=["plain", "fastest"],
                        help="plain @durable.action on default settings, and/or inline actions")
    parser.add_argument("--part", choices=["1", "metrics", "traces"], default="1",
                        help="what is on: metrics and tracing (1, the default) or one of them")
    parser.add_argument("--sample", type=float, default=None, metavar="RATIO",
                        help="trace that share of the executions (head sampling), not all")
    args = parser.parse_args()
    dsn, redis = os.environ.get("DURABLE_PG_DSN"), os.environ.get("DURABLE_REDIS_URL")
    setups = [s for s in ("sqlite", "postgres") if args.only in (None, s)]
    if not (dsn and redis) and "postgres" in setups:
        setups.remove("postgres")
    rows = [(setup, path) for setup in setups for path in args.paths]
    results: dict[tuple[str, str, bool], list[tuple[float, float]]] = {}
    for setup, path in rows:
        print(f"{setup}, {path}:", flush=True)
        for _ in range(args.rounds):
            for on in (False, True):  # alternating: drift of the machine hits both alike
                results.setdefault((setup, path, on), []).append(
                    _measured(setup, path == "plain", on, args))
    sampled = "all" if args.sample is None else f"{args.sample:g} of the"
    part = {"1": f"metrics and tracing ({sampled} executions traced)", "metrics": "metrics",
            "traces": f"tracing ({sampled} executions traced)"}[args.part]
    print(f"\n{args.workflows} workflows of 3 actions, concurrency {args.concurrency}, "
          f"{args.rounds} rounds each (medians); on: {part}")
    print("| setup | path | steps/s off | steps/s on | on / off | CPU ms/workflow off | on | "
          "on / off |")
    print("|---|---|---|---|---|---|---|---|")
    for setup, path in rows:
        (off, off_cpu), (on_, on_cpu) = (
            tuple(statistics.median(run[i] for run in results[setup, path, flag])
                  for i in (0, 1))
            for flag in (False, True))
        print(f"| {setup} | {path} | {off:,.0f} | {on_:,.0f} | {on_ / off:.2f} | "
              f"{off_cpu:.2f} | {on_cpu:.2f} | {on_cpu / off_cpu:.2f} |")


if __name__ == "__main__":
    main()
