"""SQLite only: several OS processes sharing one file, and how the store opens and fails.

The process tests start real interpreters (``python -c``) that wait on a common "go" line so
they overlap, then hammer one file; the parent checks the history and the claims afterwards.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Final

import pytest

from durable._history import (
    ActionCompleted, EventReceived, ScheduleAction, TaskCompleted, WorkflowStarted,
)
from durable._stores import ActionTask, ExecutionUpdate, Store, WorkflowCommit, open_store
from durable._stores._migrations import migration_files
from durable._stores.sqlite import _connection
from durable.errors import StoreUnavailableError

PROCESSES = 3
INPUTS = 200  # per process: half with a key of its own, half with keys every process shares
WORK = 60  # action tasks the processes compete for
RACE_CMD = 1000  # one action task every process tries to complete without claiming it

_CHILD: Final = r"""
import asyncio, json, sys, time
from durable._history import ActionCompleted, EventReceived, WorkflowStarted
from durable._stores import ActionTask, open_store

async def hammer(store, me, inputs, race):
    won = await store.complete_action_task(race, ActionCompleted(0, 0.0, race.cmd, me), now=0.0)
    seqs, claims = [], []
    for k in range(inputs):
        key = f"shared-{k // 2}" if k % 2 else f"{me}-{k}"
        seqs.append(await store.append_input("t", "wf", EventReceived(0, 0.0, "in", k, key),
                                             dedup=key, now=time.time()))
        if k % 10 == 0:
            for task in await store.claim_action_tasks(["work"], me, lease=60.0,
                                                       now=time.time(), limit=3):
                claims.append(task.cmd)
                await store.complete_action_task(task, ActionCompleted(0, 0.0, task.cmd, me),
                                                 now=time.time())
    return {"race": won, "seqs": seqs, "claims": claims}

async def race_to_create(url, me):
    store = await open_store(url)
    try:
        started = WorkflowStarted(0, 0.0, "Flow", "1", "wf", me, "t", [me])
        return {"created": (await store.create_execution(started, now=time.time()))[1]}
    finally:
        await store.close()

async def main(url, me, mode, inputs, race_cmd):
    if mode == "open":  # the children open a fresh file at the same moment
        print("ready", flush=True)
        sys.stdin.readline()
        print(json.dumps(await race_to_create(url, me)), flush=True)
        return
    store = await open_store(url)
    try:
        print("ready", flush=True)
        sys.stdin.readline()
        race = ActionTask("t", "wf", "r1", race_cmd, "race", [], {})
        print(json.dumps(await hammer(store, me, inputs, race)), flush=True)
    finally:
        await store.close()

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])))
"""


async def _run_children(url: str, mode: str) -> list[dict[str, Any]]:
    """Start the children, let them all go at once, and collect their JSON reports."""
    children = [await asyncio.create_subprocess_exec(
        sys.executable, "-c", _CHILD, url, f"p{i}", mode, str(INPUTS), str(RACE_CMD),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        for i in range(PROCESSES)]
    for child in children:
        assert child.stdout is not None and await child.stdout.readline() == b"ready\n"
    reports = await asyncio.gather(*(child.communicate(b"go\n") for child in children))
    assert [child.returncode for child in children] == [0] * PROCESSES
    return [json.loads(out) for out, _ in reports]


async def _prepare(store: Store) -> None:
    """An execution with ``WORK`` 'work' action tasks and one 'race' action task."""
    await store.create_execution(WorkflowStarted(0, 0.0, "Flow", "1", "wf", "r1", "t", []), now=0)
    [task] = await store.claim_workflow_tasks(["Flow"], "w", lease=60.0, now=0.0, limit=1)
    commands = [ScheduleAction(cmd, "work", [cmd]) for cmd in range(1, WORK + 1)]
    commands.append(ScheduleAction(RACE_CMD, "race", []))
    events = [TaskCompleted(2, 0.0)] + [c.to_event(3 + i, 0.0) for i, c in enumerate(commands)]
    actions = [ActionTask("t", "wf", "r1", c.cmd, c.name, c.args, {}) for c in commands]
    assert await store.commit_workflow_task(task, WorkflowCommit(
        "w", 2, events, ExecutionUpdate("running", None, {}), 0.0, actions=actions))


@pytest.mark.timeout(30)
async def test_processes_share_one_file_safely(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/shared.db"
    store = await open_store(url)
    try:
        await _prepare(store)
        reports = await _run_children(url, "hammer")
        events = await store.read_history("t", "wf")
        remaining = await store.claim_action_tasks(["work"], "parent", lease=1, now=1e12, limit=99)
    finally:
        await store.close()
    assert [e.seq for e in events] == list(range(1, len(events) + 1))  # dense, no duplicates
    keys = Counter(e.key for e in events if isinstance(e, EventReceived))
    assert set(keys.values()) == {1}
    assert len(keys) == PROCESSES * INPUTS // 2 + INPUTS // 2
    appended = [s for r in reports for s in r["seqs"] if s is not None]
    assert len(appended) == len(keys) and len(set(appended)) == len(appended)
    claims = [cmd for r in reports for cmd in r["claims"]]
    assert len(claims) == len(set(claims))  # no task leased to two processes at once
    assert sorted(claims + [t.cmd for t in remaining]) == list(range(1, WORK + 1))
    done = Counter(e.cmd for e in events if isinstance(e, ActionCompleted))
    assert set(done.values()) == {1} and set(done) == set(claims) | {RACE_CMD}
    assert sorted(r["race"] for r in reports) == [False] * (PROCESSES - 1) + [True]


@pytest.mark.timeout(30)
async def test_processes_open_a_fresh_file_at_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/fresh.db"
    reports = await _run_children(url, "open")
    assert sorted(r["created"] for r in reports) == [False] * (PROCESSES - 1) + [True]
    with sqlite3.connect(tmp_path / "fresh.db") as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [
            (v,) for v, _, _ in migration_files("durable._stores.sqlite")]
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (1,)
    conn.close()


# ---- opening and failing --------------------------------------------------------------------


async def test_reopen_keeps_data_and_applies_migrations_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/again.db"
    for _ in range(2):
        store = await open_store(url)
        await store.create_execution(WorkflowStarted(0, 0.0, "F", "1", "wf", "r", "t", []), now=1)
        await store.close()
    store = await open_store(url)
    try:
        assert [e.seq for e in await store.read_history("t", "wf")] == [1]
    finally:
        await store.close()
    conn = sqlite3.connect(tmp_path / "again.db")
    assert conn.execute("SELECT version FROM schema_version").fetchall() == [
            (v,) for v, _, _ in migration_files("durable._stores.sqlite")]
    conn.close()


async def test_relative_url_is_relative_to_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    store = await open_store("sqlite:///sub/rel.db")
    await store.close()
    assert (tmp_path / "sub" / "rel.db").is_file()


async def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailableError, match="does not exist") as info:
        await open_store(f"sqlite:///{tmp_path}/missing/dir/x.db")
    assert isinstance(info.value.__cause__, FileNotFoundError)
    assert not (tmp_path / "missing").exists()


async def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "junk.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreUnavailableError) as info:
        await open_store(f"sqlite:///{tmp_path}/junk.db")
    assert isinstance(info.value.__cause__, sqlite3.DatabaseError)


async def test_bad_url_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sqlite:///"):
        await open_store("sqlite://")


async def test_a_locked_database_is_store_unavailable_and_writes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_connection, "BUSY_TIMEOUT", 0.05)
    store = await open_store(f"sqlite:///{tmp_path}/locked.db")
    await store.create_execution(WorkflowStarted(0, 0.0, "F", "1", "wf", "r", "t", []), now=1)
    other = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        with pytest.raises(StoreUnavailableError, match="locked") as info:
            await store.append_input("t", "wf", EventReceived(0, 0.0, "x"), now=2)
        assert isinstance(info.value.__cause__, sqlite3.OperationalError)
        assert [e.seq for e in await store.read_history("t", "wf")] == [1]  # reads still work
        other.execute("ROLLBACK")
        assert await store.append_input("t", "wf", EventReceived(0, 0.0, "x"), now=2) == 2
    finally:
        other.close()
        await store.close()


async def test_a_closed_store_refuses_work(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path}/closed.db")
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(StoreUnavailableError, match="closed"):
        await store.get_execution("t", "wf")


async def test_a_waiting_worker_notices_another_connections_commit_at_once(
        tmp_path: Path) -> None:
    import durable

    @durable.workflow(name="noticed_across_files")
    async def noticed(ctx: durable.Context, n: int) -> int:
        return n * 2

    url = f"sqlite:///{tmp_path}/shared.db"
    worker_side, client_side = await open_store(url), await open_store(url)
    try:
        worker = durable.Worker(durable.Client(worker_side), [noticed], poll_interval=30.0)
        async with worker:  # it waits up to 30 s between looks, unless it notices a change
            await asyncio.sleep(0.1)
            client = durable.Client(client_side, poll_interval=30.0)
            handle = await client.start(noticed, 21, id="across")
            t0 = asyncio.get_running_loop().time()
            assert await handle.result(timeout=10) == 42
            # noticed by data_version within milliseconds, not by the next look (another
            # loop of the worker, firing schedules, looks about every second)
            assert asyncio.get_running_loop().time() - t0 < 0.5
    finally:
        await worker_side.close()
        await client_side.close()


async def test_a_result_waiter_reads_when_told_not_on_a_timer(tmp_path: Path) -> None:
    """In the process that runs it, an execution's end reaches its result waiter with its
    outcome; another connection's commits wake it to read again: it does not poll."""
    import durable

    @durable.workflow(name="told_not_polled")
    async def slow(ctx: durable.Context) -> str:
        await ctx.sleep(0.3)
        return "done"

    async with durable.connect(f"sqlite:///{tmp_path}/told.db") as client:
        reads = 0
        get_execution = client.store.get_execution

        async def counted(*args: Any, **kwargs: Any) -> Any:
            nonlocal reads
            reads += 1
            return await get_execution(*args, **kwargs)

        async with durable.Worker(client, [slow]):
            handle = await client.start(slow)
            client.store.get_execution = counted  # type: ignore[method-assign]
            assert await handle.result(timeout=10) == "done"
        assert reads <= 2  # polling from 2 ms, doubling, read 7 times in those 0.3 s


def test_numbered_placeholders_bind_a_sequence_without_a_warning(
        recwarn: pytest.WarningsRecorder) -> None:
    # The connection the store uses where Python 3.12.0-3.12.3's sqlite3 would warn that a
    # sequence binds ?1-style placeholders (an error under -W error); elsewhere sqlite3's own.
    by_number = _connection._ByNumber
    assert _connection._CONNECTION is (by_number if _connection._warns_on_numbered()
                                       else sqlite3.Connection)
    conn = sqlite3.connect(":memory:", factory=by_number)
    try:
        assert conn.execute("SELECT ?1, ?2, ?1", ("a", "b")).fetchone() == ("a", "b", "a")
        assert conn.execute("SELECT ?, ?", ["c", "d"]).fetchone() == ("c", "d")  # as it is
        assert conn.execute("SELECT :x", {"x": 1}).fetchone() == (1,)
        assert conn.execute("SELECT 2").fetchone() == (2,)
        conn.execute("CREATE TABLE t (a, b)")
        conn.executemany("INSERT INTO t VALUES (?2, ?1)", [(1, 2), (3, 4)])
        conn.executemany("INSERT INTO t VALUES (?, ?)", [(5, 6)])
        assert conn.execute("SELECT a, b FROM t ORDER BY a").fetchall() == [
            (2, 1), (4, 3), (5, 6)]
    finally:
        conn.close()
    assert not [w for w in recwarn if issubclass(w.category, DeprecationWarning)]
