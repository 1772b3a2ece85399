"""Group commit: writes queued together on the SQLite store's thread share one transaction,
each in a savepoint of its own (``durable._lanes``, ``sqlite._connection.in_one_transaction``)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from typing import Any

import pytest

import durable
from durable._lanes import FairExecutor, enter


class _Refused(Exception):
    pass


def _insert(conn: sqlite3.Connection, n: int) -> int:
    conn.execute("INSERT INTO scratch (n) VALUES (?)", (n,))
    if n == 7:
        raise _Refused("seven")  # after its insert: undone, and the others kept
    return n


async def test_queued_writes_commit_together_and_a_failing_one_is_undone_alone(
        tmp_path: Any) -> None:
    async with durable.connect(f"sqlite:///{tmp_path}/g.db") as client:
        store: Any = client.store
        await store._write(lambda conn: conn.execute("CREATE TABLE scratch (n INTEGER)"))
        executor: FairExecutor = store._executor
        groups: list[int] = []
        run_group = executor._run_group

        def counted(items: list[Any]) -> None:
            groups.append(len(items))
            run_group(items)

        executor._run_group = counted  # type: ignore[method-assign]
        gate = threading.Event()
        blocker = asyncio.get_running_loop().run_in_executor(executor, gate.wait)

        async def write(n: int) -> int:
            enter(f"tenant-{n % 3}")  # across lanes, as a worker's tasks are
            result: int = await store._write(_insert, n)
            return result

        writes = [asyncio.create_task(write(n)) for n in range(20)]
        await asyncio.sleep(0.05)  # all queued behind the blocker
        gate.set()
        await blocker
        outcomes = await asyncio.gather(*writes, return_exceptions=True)
        assert isinstance(outcomes[7], _Refused)
        assert [o for i, o in enumerate(outcomes) if i != 7] == [n for n in range(20) if n != 7]
        assert groups and max(groups) > 1  # they did share transactions
        rows = await store._run(lambda conn: conn.execute("SELECT n FROM scratch").fetchall())
        assert sorted(n for (n,) in rows) == [n for n in range(20) if n != 7]


async def test_a_group_whose_commit_fails_fails_every_caller() -> None:
    def group(calls: list[Any]) -> list[tuple[bool, Any]]:
        raise OSError("disk full")

    executor = FairExecutor("test-group", group=group)
    gate = threading.Event()
    loop = asyncio.get_running_loop()
    blocker = loop.run_in_executor(executor, gate.wait)
    futures = [executor.call(lambda: "unused", grouped=True) for _ in range(3)]
    gate.set()
    await blocker
    for outcome in await asyncio.gather(*futures, return_exceptions=True):
        assert isinstance(outcome, OSError)
    alone = executor.call(lambda: "alone", grouped=True)  # a lone write runs as it is
    executor.shutdown(wait=True)
    assert await alone == "alone"
    with pytest.raises(RuntimeError):
        executor.call(lambda: None, grouped=True)
