"""End to end on SQLite: durable's embedded default next to DBOS Transact on SQLite.

    .venv/bin/python -m bench.compare.dbos_sqlite [--workflows 2000] [--repeat 2]
        [--samples 200] [--only throughput latency]

Both run the 3-step workflow of ``dbos_e2e`` in the application's process on a SQLite file of
their own, made in a temporary directory for each measurement: durable with
``durable.connect("sqlite:///...")`` and a worker in the same process (``bench/e2e.py
--embedded --redis ''``), plain (``@durable.action`` with no options, a default
``durable.Worker``) and fastest (``@durable.action(timeout=5.0)``, run inline); DBOS with its
system database a SQLite file (``_dbos_app.py``, a subprocess per measurement). Throughput:
``--workflows`` started at once, the best of ``--repeat`` runs per side; latency:
start-to-result one at a time. The target (issue 14): durable's steps/s >= 10x DBOS's.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

from bench.compare._common import (
    DURABLE_TIMEOUT, Goal, Numbers, attempt, best, exit_on_sigterm, progress, report,
)
from bench.compare.dbos_e2e import _dbos_numbers

SETUPS = {"SQLite, one process, plain": True, "SQLite, one process, fastest": False}


async def durable_side(what: str, args: argparse.Namespace, plain: bool) -> dict[str, float]:
    from bench import e2e

    with tempfile.TemporaryDirectory(prefix="durable-bench-") as tmp, \
            redirect_stdout(sys.stderr):  # its own lines: progress
        common: dict[str, Any] = {"db": f"sqlite:///{tmp}/durable.db", "redis": "",
                                  "workers": 1, "embedded": True, "plain": plain}
        if what == "throughput":
            measure = e2e.measure("throughput", workflows=args.workflows,
                                  in_flight=args.workflows, **common)
        else:
            measure = e2e.measure("latency", samples=args.samples, actions=3, **common)
        return await asyncio.wait_for(measure, DURABLE_TIMEOUT)


async def dbos_side(what: str, args: argparse.Namespace) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="dbos-bench-") as tmp:
        db = f"sqlite:///{Path(tmp) / 'dbos.db'}"
        if what == "throughput":
            return await asyncio.to_thread(_dbos_numbers, "throughput", db, "--workflows",
                                           str(args.workflows))
        return await asyncio.to_thread(_dbos_numbers, "latency", db, "--samples",
                                       str(args.samples))


def goal(key: str, setup: str) -> Goal | None:
    if key == "steps_per_s":
        return ">=10x", lambda d, p: d / p >= 10.0
    return None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workflows", type=int, default=2000)
    p.add_argument("--repeat", type=int, default=2,
                   help="throughput runs per side, the best reported (default 2)")
    p.add_argument("--samples", type=int, default=200)
    p.add_argument("--only", nargs="+", default=["throughput", "latency"],
                   choices=["throughput", "latency"])
    return p


async def run(args: argparse.Namespace) -> str:
    results: dict[str, tuple[dict[str, Numbers], Numbers]] = {}
    for what in args.only:
        mine: dict[str, Numbers] = {}
        for setup, plain in SETUPS.items():
            progress(f"{what}: durable ({setup}) ...")
            mine[setup] = await best(what, args.repeat, lambda: attempt(
                f"durable {what}", durable_side(what, args, plain)))
        progress(f"{what}: DBOS Transact (SQLite, one process) ...")
        results[what] = (mine, await best(what, args.repeat, lambda: attempt(
            f"DBOS {what}", dbos_side(what, args))))
    return (f"End to end on SQLite vs DBOS Transact on SQLite, 3-step workflow, both in the "
            f"application's process (throughput: {args.workflows:,} started at once; latency: "
            f"{args.samples} one at a time); plain: @durable.action with no options and a "
            "default Worker; fastest: @durable.action(timeout=5.0), run inline.\n"
            + report(results, "DBOS", goal))


def main() -> None:
    exit_on_sigterm()
    print(asyncio.run(run(parser().parse_args())), flush=True)


if __name__ == "__main__":
    main()
