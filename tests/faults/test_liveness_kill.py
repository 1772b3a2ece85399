"""A SIGKILLed worker's tasks are taken over long before its lease would have run out.

Worker processes run with a lease of ``LEASE`` seconds, far longer than the tests wait: an
action interrupted by the SIGKILL of its worker runs again (same idempotency key, next
attempt) and the workflow finishes well within the lease, whether a peer that was running
finds the dead worker (its lock is free) or a worker started after the kill does (an
application restarting). On SQLite, and on PostgreSQL with Redis. The details of a long
action's last heartbeat survive the SIGKILL and reach the next attempt.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest

import durable

from . import _flows
from ._procs import WorkerProc, WorkerProcs, eventually, make_procs

pytestmark = pytest.mark.faults

LEASE = 600.0  # seconds: the tests finish long before a lease could expire
WAIT = 60.0  # the longest a test waits for anything


@dataclass
class Setup:
    client: durable.Client
    procs: WorkerProcs
    gate: Path
    effects: Path
    extra: list[str]

    def start(self, name: str) -> WorkerProc:
        return self.procs.start(name, extra=[*self.extra, "--lease", str(LEASE)])

    def lines(self, phase: str, action: str) -> list[dict[str, Any]]:
        return [line for line in _flows.read_effects(self.effects)
                if line["phase"] == phase and line["action"] == action]


@pytest.fixture(params=["sqlite", "postgres+redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path
            ) -> tuple[str, dict[str, str], list[str]]:
    """The store URL, the client's options and the worker processes' extra arguments (a sync
    fixture: it may set up async ones)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/d.db", {}, []
    url = request.getfixturevalue("pg_database")
    redis_url = request.getfixturevalue("redis_url")
    prefix = request.getfixturevalue("redis_prefix").rstrip(":")
    return url, {"redis_url": redis_url, "prefix": prefix}, ["--redis", redis_url,
                                                             "--prefix", prefix]


@pytest.fixture
async def setup(backend: tuple[str, dict[str, str], list[str]],
                tmp_path: Path) -> AsyncIterator[Setup]:
    url, options, extra = backend
    client = await durable.connect(url, **options)  # type: ignore[arg-type]
    procs = make_procs(tmp_path, url)
    try:
        yield Setup(client, procs, tmp_path / "gate.open", tmp_path / "effects.jsonl", extra)
    finally:
        procs.close()
        print(procs.logs())  # shown by pytest when the test failed
        await client.close()


async def _kill_in_gate(setup: Setup, handle: durable.WorkflowHandle[Any]) -> None:
    """Wait for the slow action to start, SIGKILL the worker running it, open the gate."""
    [started] = await eventually(lambda: setup.lines("start", "gate"), timeout=WAIT,
                                 what="the slow action to start")
    [victim] = [p for p in setup.procs.procs if p.pid == started["pid"]]
    setup.procs.kill(victim)
    setup.gate.touch()


async def _finished_by_another_attempt(setup: Setup, handle: durable.WorkflowHandle[Any]) -> None:
    async def ended() -> bool:
        setup.procs.assert_running()
        return (await handle.describe()).status != "running"

    await eventually(ended, timeout=WAIT, what="the workflow to finish (not its lease)")
    assert await handle.result(timeout=5.0) == "k:1+k:gate"
    starts, ends = setup.lines("start", "gate"), setup.lines("end", "gate")
    assert len(starts) == 2 and len(ends) == 1  # the killed attempt, and the one that finished
    assert len({line["key"] for line in starts}) == 1
    assert ends[0]["pid"] != starts[0]["pid"]


async def test_a_running_peer_takes_over_a_killed_worker_s_action(setup: Setup) -> None:
    setup.start("A")
    setup.start("B")
    handle = await setup.client.start(_flows.fault_child, "k", id="peer")
    await _kill_in_gate(setup, handle)
    await _finished_by_another_attempt(setup, handle)


async def test_a_restarted_application_resumes_its_work_at_once(setup: Setup) -> None:
    setup.start("A")
    handle = await setup.client.start(_flows.fault_child, "k", id="restart")
    await _kill_in_gate(setup, handle)
    setup.start("A-again")
    await _finished_by_another_attempt(setup, handle)


async def test_heartbeat_details_survive_a_sigkill(setup: Setup) -> None:
    setup.start("A")
    handle = await setup.client.start(_flows.fault_resumable, "h", id="beats")

    async def recorded() -> Any:
        pending = (await handle.describe()).pending_actions
        details = pending and await setup.client.store.action_heartbeat_details(pending[0])
        return details and msgspec.msgpack.decode(details) == {"next": 3}

    await eventually(recorded, timeout=WAIT, what="the heartbeat of step 2 to be recorded")
    [victim] = setup.procs.procs
    setup.procs.kill(victim)
    setup.start("B")
    await eventually(lambda: setup.lines("end", "resumable"), timeout=WAIT,
                     what="the next attempt to finish")
    assert await handle.result(timeout=WAIT) == {"resumed_from": 3, "attempt": 2}
    starts = setup.lines("start", "resumable")
    assert [line["args"][2] for line in starts] == [0, 3]  # the second resumed at step 3
