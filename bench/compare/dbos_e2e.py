"""End to end: durable on PostgreSQL + Redis (one worker process) next to DBOS Transact.

    .venv/bin/python -m bench.compare.dbos_e2e [--workflows 2000] [--repeat 2] [--samples 200]
        [--recovery-workflows 200] [--steps 20] [--only throughput latency recovery]

Both run a 3-step workflow (durable: ``bench/_e2e_flows.py``, 3 actions; DBOS:
``bench/compare/_dbos_app.py``, 3 ``@DBOS.step``s) on the local PostgreSQL, each in a database
of its own created for the run and dropped after it (``BENCH_PG``, default
``postgresql://postgres@127.0.0.1:5432``; durable's Redis is ``DURABLE_REDIS_URL``, default
``redis://127.0.0.1:6379/0``).

durable is measured in four setups (``_common.SETUPS``): its worker in the application's
process (like DBOS, whose application process runs its workflows; a start then hands the first
task straight to the worker) or in a worker process of its own, each with the workflow written
the plain way (``@durable.action`` with no options, a default ``durable.Worker``) and with the
fastest documented option (``@durable.action(timeout=5.0)``: the worker runs it inline).

- throughput: ``--workflows`` started at once from one process; workflows/s and steps/s, the
  best of ``--repeat`` runs for each side.
- latency: start-to-result one at a time, ``--samples`` samples; p50 and p99 (both setups).
- recovery: ``--recovery-workflows`` workflows of ``--steps`` 20 ms steps in flight; the
  process running them is SIGKILLed and a new one started at once; seconds from the kill until
  all have finished (durable: the worker process, with ``durable server`` and a 1 s lease, or
  the default lease when plain;
  DBOS: the application process, which recovers its pending workflows when it launches).

DBOS runs in a subprocess per measurement so its global state and the SIGKILL are clean;
durable's numbers come from ``bench/e2e.py`` (worker and server processes, as in production).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

from bench.compare._common import (
    REDIS_URL,
    ROOT,
    Goal,
    attempt,
    best,
    durable_setups,
    exit_on_sigterm,
    progress,
    report,
    scratch_database,
)

TARGETS = {"steps_per_s": 10.0, "p50": 0.25, "recovery": 5.0}
DBOS_DB = f"durable_bench_dbos_{os.getpid()}"


def _dbos(*args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "bench.compare._dbos_app", *args], cwd=ROOT,
                            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True,
                            start_new_session=True)


def _dbos_numbers(*args: str) -> dict[str, float]:
    proc = _dbos(*args)
    out, _ = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"DBOS {args[0]} failed (exit {proc.returncode})")
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


async def _dbos_counts(conn: Any) -> tuple[int, int, list[int]]:
    """Finished workflows, all workflows, and the steps done by the five first started."""
    done, total = await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE status = 'SUCCESS'), count(*) FROM dbos.workflow_status")
    rows = await conn.fetch(
        "SELECT count(o.function_id) AS n FROM (SELECT workflow_uuid FROM dbos.workflow_status "
        "ORDER BY created_at LIMIT 5) w LEFT JOIN dbos.operation_outputs o USING (workflow_uuid) "
        "GROUP BY w.workflow_uuid")
    return done, total, [r["n"] for r in rows]


async def dbos_recovery(db: str, workflows: int, steps: int) -> dict[str, float]:
    import asyncpg

    victim = _dbos("start", db, "--workflows", str(workflows), "--steps", str(steps))
    assert victim.stdout is not None
    await asyncio.to_thread(victim.stdout.readline)  # "running": all started
    conn = await asyncpg.connect(db)
    survivor = None
    try:
        progress(f"  DBOS: started {workflows} workflows of {steps} steps; waiting until under way")
        while True:
            done, total, first = await _dbos_counts(conn)
            if total >= workflows and len(first) == 5 and min(first) >= 2:
                break
            await asyncio.sleep(0.05)
        victim.send_signal(signal.SIGKILL)
        killed_at = time.perf_counter()
        victim.wait()
        survivor = _dbos("resume", db)
        progress(f"  DBOS: SIGKILLed with {done} finished; a new process is running")
        while (await _dbos_counts(conn))[0] < workflows:
            await asyncio.sleep(0.05)
        return {"finished": time.perf_counter() - killed_at}
    finally:
        await conn.close()
        for proc in (victim, survivor):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


async def dbos_side(what: str, args: argparse.Namespace) -> dict[str, float]:
    async with scratch_database(DBOS_DB) as db:
        if what == "throughput":
            return await asyncio.to_thread(_dbos_numbers, "throughput", db, "--workflows",
                                           str(args.workflows))
        if what == "latency":
            return await asyncio.to_thread(_dbos_numbers, "latency", db, "--samples",
                                           str(args.samples))
        return await dbos_recovery(db, args.recovery_workflows, args.steps)


def goal(key: str, setup: str) -> Goal | None:
    """The targets against DBOS hold for every setup of durable's."""
    if key == "steps_per_s":
        return ">=10x", lambda d, p: d / p >= TARGETS["steps_per_s"]
    if key == "p50":
        return "<=0.25 of DBOS's", lambda d, p: d / p <= TARGETS["p50"]
    if key == "finished":
        return ">=5x sooner", lambda d, p: p / d >= TARGETS["recovery"]
    return None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workflows", type=int, default=2000)
    p.add_argument("--repeat", type=int, default=2,
                   help="throughput runs per side, the best reported (default 2)")
    p.add_argument("--samples", type=int, default=200)
    p.add_argument("--recovery-workflows", type=int, default=200)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--redis", default=REDIS_URL)
    p.add_argument("--only", nargs="+", default=["throughput", "latency", "recovery"],
                   choices=["throughput", "latency", "recovery"])
    return p


async def run(args: argparse.Namespace) -> str:
    results = {}
    for what in args.only:
        mine = await durable_setups(what, args)
        progress(f"{what}: DBOS Transact (PostgreSQL, one process) ...")
        results[what] = (mine, await best(what, args.repeat, lambda: attempt(
            f"DBOS {what}", dbos_side(what, args))))
    return (f"End to end vs DBOS Transact, 3-step workflow on the same PostgreSQL (throughput: "
            f"{args.workflows:,} started at once; latency: {args.samples} one at a time; "
            f"recovery: {args.recovery_workflows} x {args.steps} steps, SIGKILL). durable runs on "
            "PostgreSQL + Redis with durable server, its worker either in the application's "
            "process (one process, as DBOS) or in a process of its own; plain: "
            "@durable.action with no options and a default Worker; fastest: "
            "@durable.action(timeout=5.0), run inline.\n" + report(results, "DBOS", goal))


def main() -> None:
    exit_on_sigterm()
    print(asyncio.run(run(parser().parse_args())), flush=True)


if __name__ == "__main__":
    main()
