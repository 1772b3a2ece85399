"""A schedule that missed runs while ``durable server`` was down: real server processes on
PostgreSQL + Redis, SIGKILLed and started again.

Once the server is back, every due time missed during the outage that is still inside the
catch-up window is started, exactly once and with the workflow id of its due time; the ones
outside a short window are counted as missed and never started.
"""

from __future__ import annotations

import calendar
import signal
import time
from pathlib import Path

import pytest

import durable
from _support import eventually
from durable._stores import ExecutionRecord

from ._procs import WorkerProcs, make_procs

pytestmark = [pytest.mark.faults, pytest.mark.integration]

OUTAGE = 4.0  # seconds the server is down


@durable.workflow(name="DowntimeTick")
async def downtime_tick(ctx: durable.Context) -> str:
    return ctx.info.workflow_id


def start_server(procs: WorkerProcs, name: str, redis_url: str, prefix: str) -> None:
    procs.start_module(name, "durable._cli", "server", "--db", procs.url, "--redis", redis_url,
                       "--prefix", prefix, "--port", "0", "--interval", "0.05")


async def runs(handle: durable.ScheduleHandle) -> int:
    return (await handle.describe()).runs


async def test_missed_runs_are_caught_up_after_the_server_was_down(
        tmp_path: Path, pg_database: str, redis_url: str, redis_prefix: str) -> None:
    procs = make_procs(tmp_path, pg_database)
    async with durable.connect(pg_database, redis_url=redis_url, prefix=redis_prefix) as client:
        catch_up = await client.schedule(downtime_tick, id="all", every=1, overlap="allow_all")
        strict = await client.schedule(downtime_tick, id="strict", every=1, overlap="allow_all",
                                       catchup_window=1.5)
        try:
            async with durable.Worker(client, workflows=[downtime_tick]):
                start_server(procs, "server-1", redis_url, redis_prefix)
                await eventually(lambda: _at_least(catch_up, 2), what="two runs before the outage")
                procs.kill(procs.procs[0])
                before = await catch_up.describe()
                down_at = time.time()
                await eventually(lambda: time.time() > down_at + OUTAGE, what="the outage")
                assert (await catch_up.describe()).runs == before.runs  # nobody else fires
                start_server(procs, "server-2", redis_url, redis_prefix)
                up_at = time.time()
                await eventually(lambda: _caught_up(catch_up, up_at), timeout=30,
                                 what="the missed runs to be started")
                await eventually(lambda: _caught_up(strict, up_at), timeout=30,
                                 what="the strict schedule to go on")
                procs.assert_running()
                server = procs.procs[-1].popen
                server.send_signal(signal.SIGTERM)  # no more runs; it finishes the pass in flight
                assert server.wait(timeout=20) == 0
                executions = await client.list(limit=1000)
                for record in executions:
                    assert await client.get_handle(record.workflow_id).result(timeout=20) \
                        == record.workflow_id
        finally:
            procs.close()
            print(procs.logs())
        for handle in (catch_up, strict):
            ids = sorted(r.workflow_id for r in executions
                         if r.workflow_id.startswith(f"{handle.schedule_id}-"))
            assert len(ids) == len(set(ids)) == (await handle.describe()).runs
        all_due = _dues(executions, "all")
        assert all_due == list(range(all_due[0], all_due[-1] + 1))  # no gap, no duplicate
        strict_due = _dues(executions, "strict")
        gap = max(b - a for a, b in zip(strict_due, strict_due[1:]))
        assert gap >= OUTAGE - 2  # the outage's due times, too late for its window, were skipped
        d = await strict.describe()
        assert d.missed >= OUTAGE - 2 and d.missed + d.runs >= all_due[-1] - strict_due[0]


async def _at_least(handle: durable.ScheduleHandle, n: int) -> bool:
    return await runs(handle) >= n


async def _caught_up(handle: durable.ScheduleHandle, up_at: float) -> bool:
    d = await handle.describe()
    return bool(d.recent_runs) and d.recent_runs[-1].due >= up_at + 1


def _dues(executions: list[ExecutionRecord], schedule_id: str) -> list[int]:
    """The due times (epoch seconds) in the workflow ids of the schedule's runs, in order."""
    prefix = f"{schedule_id}-"
    stamps = sorted(r.workflow_id[len(prefix):] for r in executions
                    if r.workflow_id.startswith(prefix))
    return [calendar.timegm(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ")) for s in stamps]
