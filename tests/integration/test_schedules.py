"""Schedules end to end: ``client.schedule`` and its handle on every store, run by the
embedded worker (memory, SQLite), by ``durable.Server`` (with Redis dispatch on PostgreSQL),
by two servers at once, and from the ``durable schedule`` command line.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import durable
from _support import eventually
from durable._cli import main
from durable._dispatch import LocalDispatcher
from durable._stores import Store, open_store
from durable.errors import (
    InvalidScheduleError, ScheduleAlreadyExistsError, ScheduleNotFoundError, ValidationError,
)
from durable_server import Server

REPO = Path(__file__).resolve().parents[2]


@durable.workflow(name="SchedTestEcho")
async def echo(ctx: durable.Context, n: int) -> int:
    return n


@durable.workflow(name="SchedTestHold")
async def hold(ctx: durable.Context) -> str:
    await ctx.wait_for("go")
    return "went"


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'schedules.db'}"
    return str(request.getfixturevalue("pg_database"))


@pytest.fixture
async def client(store_url: str) -> AsyncIterator[durable.Client]:
    async with durable.connect(store_url, tenants=[f"t-{uuid.uuid4().hex[:8]}", "other"],
                               ) as opened:
        yield opened


class Recorder:
    """A dispatcher that records what servers publish."""

    def __init__(self) -> None:
        self.published: list[Any] = []

    async def publish(self, refs: Any, *, sticky: bool = True) -> None:
        self.published.extend(refs)

    async def receive(self, spec: Any, *, limit: int, timeout: float,
                      kinds: Any = None) -> list[Any]:
        return []

    async def stick(self, owner: str, tenant: str, workflow_id: str, *, keep: bool) -> float:
        return float("inf")

    async def forget(self, tenant: str, workflow_id: str) -> None:
        pass

    async def forget_worker(self, owner: str) -> None:
        pass

    async def retire(self, owner: str) -> None:
        pass

    async def ack(self, claims: Any) -> None:
        pass

    async def close(self) -> None:
        pass


# ---- the client API -------------------------------------------------------------------------


async def test_create_describe_list_and_idempotent_create(client: durable.Client) -> None:
    handle = await client.schedule(echo, 7, id="nightly", cron="0 3 * * *",
                                   timezone="Europe/Paris", note="reports")
    d = await handle.describe(next_runs=3)
    assert (d.schedule_id, d.workflow, d.args, d.cron, d.timezone) == (
        "nightly", "SchedTestEcho", [7], "0 3 * * *", "Europe/Paris")
    assert d.overlap is durable.Overlap.SKIP and d.catchup_window == 365 * 86400
    assert len(d.next_runs) == 3
    for due in d.next_runs:
        local = due.astimezone(datetime.now().astimezone().tzinfo)
        assert due.tzinfo is timezone.utc and local == due
        assert due.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Paris")).hour == 3
    again = await client.schedule(echo, 7, id="nightly", cron="0 3 * * *",
                                  timezone="Europe/Paris")
    assert again.schedule_id == "nightly"  # same definition: the same schedule
    await client.schedule(echo, 1, id="every-5m", every=timedelta(minutes=5))
    listed = await client.list_schedules()
    assert [s.schedule_id for s in listed] == ["every-5m", "nightly"]
    assert [s.every for s in listed] == [300.0, None]


async def test_another_definition_needs_replace(client: durable.Client) -> None:
    await client.schedule(echo, 1, id="s", every=60)
    with pytest.raises(ScheduleAlreadyExistsError) as caught:
        await client.schedule(echo, 2, id="s", every=60)
    assert caught.value.schedule_id == "s"  # type: ignore[attr-defined]
    assert pickle.loads(pickle.dumps(caught.value)).tenant == client.tenant
    handle = await client.schedule(echo, 2, id="s", cron="*/5 * * * *", replace=True)
    d = await handle.describe()
    assert (d.args, d.cron, d.every) == ([2], "*/5 * * * *", None)
    assert d.next_runs[0].minute % 5 == 0


@pytest.mark.parametrize("kwargs, field", [
    ({"cron": "every day"}, "cron"),
    ({"cron": "* * * * *", "timezone": "Nowhere/Land"}, "timezone"),
    ({"every": 0}, "every"),
    ({"every": "5m"}, "every"),
    ({"every": 60, "overlap": "sometimes"}, "overlap"),
    ({"every": 60, "catchup_window": -1}, "catchup_window"),
    ({}, "cron/every"),
])
async def test_bad_definitions_are_typed_errors_and_write_nothing(
        client: durable.Client, kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidScheduleError) as caught:
        await client.schedule(echo, 1, id="bad", **kwargs)
    assert caught.value.field == field  # type: ignore[attr-defined]
    assert await client.list_schedules() == []
    with pytest.raises(ValidationError):  # arguments are checked against the signature too
        await client.schedule(echo, "not an int", id="bad", every=60)  # type: ignore[arg-type]


async def test_pause_unpause_trigger_delete(client: durable.Client) -> None:
    handle = await client.schedule(echo, 3, id="s", every=3600, overlap="allow_all")
    await handle.pause(note="maintenance")
    d = await handle.describe()
    assert d.paused and d.note == "maintenance" and d.next_runs == []
    await handle.trigger()  # works while paused
    d = await handle.describe()
    [run] = d.recent_runs
    assert run.manual and run.workflow_id.startswith("s-manual-") and d.runs == 1
    assert (await client.get_handle(run.workflow_id).describe()).workflow == "SchedTestEcho"
    await handle.unpause()
    d = await handle.describe()
    assert not d.paused and d.note == "maintenance" and d.next_runs[0] > datetime.now(timezone.utc)
    await handle.delete()
    for call in (handle.describe(), handle.pause(), handle.trigger(), handle.delete()):
        with pytest.raises(ScheduleNotFoundError):
            await call
    assert (await client.get_handle(run.workflow_id).describe()).status == "running"  # goes on


async def test_trigger_follows_the_overlap_policy(client: durable.Client) -> None:
    handle = await client.schedule(hold, id="s", every=3600)  # skip
    await handle.trigger()
    await handle.trigger()  # the first still runs: skipped
    await handle.trigger(overlap=durable.Overlap.ALLOW_ALL)
    d = await handle.describe()
    assert (d.runs, d.skipped, len(d.running)) == (2, 1, 2)


async def test_schedules_are_per_tenant(client: durable.Client) -> None:
    await client.schedule(echo, 1, id="s", every=60)
    await client.schedule(echo, 1, id="s", every=60, tenant="other")
    assert [s.tenant for s in await client.list_schedules(tenant="other")] == ["other"]
    assert len(await client.list_schedules()) == 1
    await client.get_schedule("s", tenant="other").delete()
    await client.get_schedule("s").describe()


# ---- running schedules ----------------------------------------------------------------------


@pytest.mark.parametrize("store_url", ["memory", "sqlite"], indirect=True)
async def test_the_embedded_worker_runs_a_schedule(client: durable.Client) -> None:
    handle = await client.schedule(echo, 5, id="tick", every=1)
    async with durable.Worker(client, workflows=[echo]):
        d = await eventually(lambda: _with_runs(handle, 2), what="two scheduled runs")
        for run in d.recent_runs:
            assert await client.get_handle(run.workflow_id).result(timeout=5) == 5
    due = [r.due for r in d.recent_runs]
    assert due[1] - due[0] == 1.0 and due[0] == int(due[0])
    assert d.recent_runs[0].workflow_id == "tick-" + datetime.fromtimestamp(
        due[0], timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _with_runs(handle: durable.ScheduleHandle, n: int) -> durable.ScheduleDescription | None:
    d = await handle.describe()
    return d if d.runs >= n else None


async def test_two_servers_never_start_one_run_twice(store_url: str) -> None:
    stores: list[Store] = []
    shared = await open_store(store_url)
    stores.append(shared)
    other = shared if store_url.startswith("memory") else await open_store(store_url)
    if other is not shared:
        stores.append(other)
    created = Counter[str]()
    for store in {id(s): s for s in stores}.values():
        _count_creations(store, created)
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    admin = durable.Client(shared, dispatcher=Recorder(), tenant=tenant)
    for n in range(3):
        await admin.schedule(echo, n, id=f"s{n}", every=1, overlap="allow_all")
    skew = [0.0]
    base = time.time()

    def clock() -> float:
        return base + skew[0]

    recorders = [Recorder(), Recorder()]
    servers = [Server(durable.Client(s, dispatcher=r, tenant=tenant), port=0, clock=clock,
                      interval=0.01, schedule_poll=0.01, redispatch_after=1e6)  # no outbox
               for s, r in zip([shared, other], recorders)]
    try:
        async with servers[0], servers[1]:
            skew[0] = 30.0  # 30 seconds of due times come due at once, for both servers

            async def all_started() -> bool:
                runs = [(await admin.get_schedule(f"s{n}").describe()).runs for n in range(3)]
                return min(runs) >= 30

            await eventually(all_started, what="30 runs of each schedule")
    finally:
        for store in stores:
            await store.close()
    published = Counter(r.workflow_id for rec in recorders for r in rec.published)
    assert set(published.values()) == {1} and set(created.values()) == {1}
    assert set(published) == set(created)
    # Each schedule started every whole second from its first due time after it was created up
    # to the skewed clock: 30 runs, one more for each second boundary between its creation and
    # `base`.
    last = datetime.fromtimestamp(int(base + 30), timezone.utc)
    for n in range(3):
        runs = sorted(w for w in created if w.startswith(f"s{n}-"))
        expected = [f"s{n}-" + (last - timedelta(seconds=k)).strftime("%Y-%m-%dT%H:%M:%SZ")
                    for k in reversed(range(len(runs)))]
        assert runs == expected and len(runs) >= 30


def _count_creations(store: Store, created: Counter[str]) -> None:
    original = store.create_execution

    async def counting(started: Any, *, now: float) -> Any:
        record, new = await original(started, now=now)
        created[started.workflow_id] += new
        return record, new

    store.create_execution = counting  # type: ignore[method-assign]


async def test_server_with_redis_dispatch_runs_a_schedule(pg_database: str, redis_url: str,
                                                          redis_prefix: str) -> None:
    async with durable.connect(pg_database, redis_url=redis_url, prefix=redis_prefix) as client:
        handle = await client.schedule(echo, 9, id="tick", every=1)
        async with Server(client, port=0, interval=0.05), \
                durable.Worker(client, workflows=[echo]):
            d = await eventually(lambda: _with_runs(handle, 2), what="two scheduled runs")
            assert [await client.get_handle(r.workflow_id).result(timeout=10)
                    for r in d.recent_runs[:2]] == [9, 9]


async def test_workers_on_redis_dispatch_do_not_fire_schedules(pg_database: str, redis_url: str,
                                                               redis_prefix: str) -> None:
    async with durable.connect(pg_database, redis_url=redis_url, prefix=redis_prefix) as client:
        handle = await client.schedule(echo, 9, id="tick", every=1)
        local = durable.Client(client.store, dispatcher=LocalDispatcher(client.store,
                                                                        fire_timers=False))
        start = time.time()
        async with durable.Worker(client, workflows=[echo]), \
                durable.Worker(local, workflows=[echo]):
            await eventually(lambda: time.time() > start + 2.5, what="2.5 s to pass")
        assert (await handle.describe()).runs == 0  # only servers (and embedded workers) fire


# ---- the command line -----------------------------------------------------------------------


SCHEDULED_MODULE = '''
import durable

@durable.workflow(name="CliScheduled")
async def cli_scheduled(ctx: durable.Context, who: str) -> str:
    return "hello " + who

worker = [cli_scheduled]
'''


def test_schedule_commands_and_a_worker_process_that_runs_them(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    (tmp_path / "cli_scheduled.py").write_text(SCHEDULED_MODULE)

    def cli(*args: str) -> tuple[int, str, str]:
        code = main(["--db", db, *args])
        out, err = capsys.readouterr()
        return code, out, err

    sys.path.insert(0, str(tmp_path))
    try:
        code, out, err = cli("schedule", "create", "greet", "CliScheduled", '"you"', "--every",
                             "1s", "--module", "cli_scheduled")
        assert code == 0 and out.startswith("schedule greet: next run "), err
        code, _, err = cli("schedule", "create", "nightly", "CliScheduled", '"eu"', "--cron",
                           "0 3 * * *", "--timezone", "Europe/Paris", "--overlap", "buffer_one",
                           "--module", "cli_scheduled")
        assert code == 0, err
        code, _, err = cli("schedule", "create", "bad", "CliScheduled", '"x"', "--cron", "nope",
                           "--module", "cli_scheduled")
        assert code == 1 and "bad cron expression 'nope'" in err
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("cli_scheduled", None)
    code, out, _ = cli("schedule", "list")
    assert [line.split()[0] for line in out.splitlines()] == ["ID", "greet", "nightly"]
    assert "cron '0 3 * * *' Europe/Paris  buffer_one  active" in out

    env = {**__import__("os").environ, "DURABLE_DB": db, "PYTHONPATH": str(REPO)}
    worker = subprocess.Popen([sys.executable, "-m", "durable._cli", "worker", "cli_scheduled"],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 20
        while "completed" not in cli("list", "--status", "completed")[1]:
            assert time.monotonic() < deadline and worker.poll() is None
            time.sleep(0.1)
    finally:
        worker.terminate()
        worker.communicate(timeout=10)
    assert cli("schedule", "pause", "greet", "--note", "enough")[0] == 0
    code, out, _ = cli("schedule", "show", "greet")
    assert "status:    paused  (enough)" in out and "greet-20" in out
    assert cli("schedule", "trigger", "greet", "--overlap", "allow_all")[0] == 0
    assert "(manual)" in cli("schedule", "show", "greet")[1]
    code, out, err = cli("schedule", "backfill", "nightly", "--start", "2026-11-01T00:00Z",
                         "--end", "2026-11-03T23:59+00:00", "--overlap", "allow_all")
    assert (code, out) == (0, "backfilled nightly: 3 runs queued\n"), err
    assert "nightly-2026-11-02T02:00:00Z" in cli("schedule", "show", "nightly")[1]  # 03:00 Paris
    code, _, err = cli("schedule", "backfill", "nightly", "--start", "yesterday", "--end", "0")
    assert code == 1 and "--start 'yesterday' is neither ISO 8601 nor epoch seconds" in err
    assert cli("schedule", "unpause", "greet")[0] == 0
    assert cli("schedule", "delete", "greet")[0] == 0
    code, _, err = cli("schedule", "show", "greet")
    assert code == 1 and err == "error: no schedule 'greet' in tenant 'default'\n"



@durable.workflow(name="SchedTestQueued", queue="sched-q")
async def queued_echo(ctx: durable.Context, n: int) -> int:
    return n


async def test_scheduled_runs_go_to_the_workflow_queue(client: durable.Client) -> None:
    handle = await client.schedule(queued_echo, 1, id="sq", every=3600)
    await handle.trigger()
    [run] = (await handle.describe()).recent_runs
    assert (await client.get_handle(run.workflow_id).describe()).queue == "sched-q"
