"""``Store.run_action_transaction`` in every store: a database action's writes and its
completion commit together or not at all (SQLite, PostgreSQL); the memory store refuses.

A user's table (``ledger``) lives in the store's own database; the test reads it through a
connection of its own.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest

from durable._history import ActionCompleted
from durable._stores import ActionTask, Store
from durable.errors import DatabaseActionError

from .test_store import LEASE, NOW, T1, act, claim_actions, history, started_with

LEDGER = "CREATE TABLE ledger (entry TEXT NOT NULL, amount INTEGER NOT NULL)"


class Ledger:
    """The user's table, read and written outside durable; ``body`` makes an action's body."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.url = store.url
        self.driver = getattr(store, "transaction_driver", None)

    async def create(self) -> None:
        await self._execute(LEDGER)

    async def rows(self) -> list[tuple[str, int]]:
        if self.driver == "sqlite3":
            with sqlite3.connect(self.url[len("sqlite:///"):]) as conn:
                found = [tuple(r) for r in conn.execute("SELECT entry, amount FROM ledger")]
            conn.close()
            return sorted(found)  # type: ignore[arg-type]
        conn = await asyncpg.connect(self.url)
        try:
            return sorted(tuple(r) for r in await conn.fetch("SELECT entry, amount FROM ledger"))  # type: ignore[misc]
        finally:
            await conn.close()

    async def _execute(self, statement: str) -> None:
        if self.driver == "sqlite3":
            with sqlite3.connect(self.url[len("sqlite:///"):]) as conn:
                conn.execute(statement)
            conn.close()
            return
        conn = await asyncpg.connect(self.url)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    def body(self, entry: str, amount: int, *, fail: bool = False,
             query: str | None = None) -> Callable[[Any], Any]:
        """Insert a row, then raise (``fail``) or return ``query``'s value (or the amount)."""
        if self.driver == "sqlite3":
            def run(conn: sqlite3.Connection) -> Any:
                conn.execute("INSERT INTO ledger VALUES (?, ?)", (entry, amount))
                if fail:
                    raise RuntimeError("card declined")
                return conn.execute(query).fetchone()[0] if query else amount

            return run

        async def run_async(conn: asyncpg.Connection) -> Any:
            await conn.execute("INSERT INTO ledger VALUES ($1, $2)", entry, amount)
            if fail:
                raise RuntimeError("card declined")
            return await conn.fetchval(query) if query else amount

        return run_async


@pytest.fixture
async def ledger(store: Store) -> AsyncIterator[Ledger]:
    found = Ledger(store)
    if found.driver is None:
        pytest.skip("the memory store has no transactions (see test_memory_refuses)")
    await found.create()
    yield found


async def claimed_action(store: Store, owner: str = "a1", now: float = NOW) -> ActionTask:
    await started_with(store, act(1, "pay"))
    [task] = await claim_actions(store, owner, names=("pay",), now=now)
    return task


def completions(events: list[Any]) -> list[ActionCompleted]:
    return [e for e in events if isinstance(e, ActionCompleted)]


async def test_memory_refuses(store: Store) -> None:
    if getattr(store, "transaction_driver", None) is not None:
        pytest.skip("this store has transactions")
    task = await claimed_action(store)
    with pytest.raises(DatabaseActionError) as caught:
        await store.run_action_transaction(task, lambda conn: None, isolation="serializable",
                                           now=NOW)
    assert caught.value.action == "pay"  # type: ignore[attr-defined]


async def test_writes_and_completion_commit_together(store: Store, ledger: Ledger) -> None:
    task = await claimed_action(store)
    assert await store.run_action_transaction(task, ledger.body("inv-1", 50),
                                              isolation="serializable", now=NOW + 1)
    assert await ledger.rows() == [("inv-1", 50)]
    [done] = completions(await history(store))
    assert (done.cmd, done.result, done.attempt) == (1, 50, 1)
    assert (await store.pending_work(T1, "wf-1"))[0] == []  # the action task is gone
    assert await store.claim_workflow_tasks(["Flow"], "w", lease=LEASE, now=NOW + 1, limit=5)


async def test_a_failing_action_rolls_back_and_records_nothing(store: Store,
                                                              ledger: Ledger) -> None:
    task = await claimed_action(store)
    with pytest.raises(RuntimeError, match="card declined"):
        await store.run_action_transaction(task, ledger.body("inv-1", 50, fail=True),
                                           isolation="serializable", now=NOW + 1)
    assert await ledger.rows() == []
    assert completions(await history(store)) == []
    [pending], _ = await store.pending_work(T1, "wf-1")
    assert pending.cmd == 1  # still there, to be retried


async def test_a_stale_attempt_after_the_recorded_one_keeps_nothing(store: Store,
                                                                    other_store: Store,
                                                                    ledger: Ledger) -> None:
    task = await claimed_action(store)  # this worker's lease expires meanwhile ...
    [again] = await claim_actions(other_store, "a2", names=("pay",), now=NOW + LEASE + 1)
    assert await other_store.run_action_transaction(again, ledger.body("second", 2),
                                                    isolation="serializable", now=NOW + 40)
    assert not await store.run_action_transaction(task, ledger.body("first", 1),
                                                  isolation="serializable", now=NOW + 41)
    assert await ledger.rows() == [("second", 2)]  # ... and its late attempt had no effect
    assert [c.result for c in completions(await history(store))] == [2]


async def test_isolation_levels_are_honoured(store: Store, ledger: Ledger) -> None:
    if ledger.driver == "sqlite3":
        # SQLite transactions are serializable: every level an action asks for is satisfied;
        # the action runs inside the write transaction (BEGIN IMMEDIATE).
        task = await claimed_action(store)
        assert await store.run_action_transaction(
            task, ledger.body("x", 1, query="SELECT count(*) FROM ledger"),
            isolation="read_committed", now=NOW + 1)
        assert [c.result for c in completions(await history(store))] == [1]
        return
    levels = ["read_committed", "repeatable_read", "serializable"]
    await started_with(store, *(act(n, "pay") for n in range(1, 4)))
    tasks = sorted(await claim_actions(store, names=("pay",)), key=lambda t: t.cmd)
    for task, level in zip(tasks, levels):
        assert await store.run_action_transaction(
            task, ledger.body(level, task.cmd, query="SHOW transaction_isolation"),
            isolation=level, now=NOW + task.cmd)
    shown = [c.result for c in sorted(completions(await history(store)), key=lambda c: c.cmd)]
    assert shown == ["read committed", "repeatable read", "serializable"]


async def test_postgres_outcome_committed_but_not_moved_is_finished_without_running_again(
        store: Store, ledger: Ledger) -> None:
    if ledger.driver != "asyncpg":
        pytest.skip("SQLite records the completion in the history in the same transaction")
    from durable._stores.postgres import _transactions

    task = await claimed_action(store)
    async with store._pool.acquire() as conn:  # type: ignore[attr-defined]
        await store._transact(conn, task, ledger.body("inv-1", 50), "serializable",  # type: ignore[attr-defined]
                              NOW + 1)  # committed; then the worker died before the move
    assert completions(await history(store)) == []
    [again] = await claim_actions(store, "a2", names=("pay",), now=NOW + LEASE + 1)
    ran = []

    async def must_not_run(conn: Any) -> Any:
        ran.append(conn)

    assert await store.run_action_transaction(again, must_not_run, isolation="serializable",
                                              now=NOW + 40)
    assert ran == [] and await ledger.rows() == [("inv-1", 50)]
    [done] = completions(await history(store))
    assert done.result == 50
    assert not await store.run_action_transaction(again, must_not_run,
                                                  isolation="serializable", now=NOW + 41)
    assert ran == [] and _transactions.PostgresTransactions.transaction_driver == "asyncpg"


async def test_sqlite_action_that_commits_by_itself_is_refused(store: Store, ledger: Ledger) -> None:
    if ledger.driver != "sqlite3":
        pytest.skip("a SQLite action receives the store's own connection")
    task = await claimed_action(store)

    def commits(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO ledger VALUES ('x', 1)")
        conn.execute("COMMIT")

    with pytest.raises(Exception, match="ended the transaction"):
        await store.run_action_transaction(task, commits, isolation="serializable", now=NOW)
    assert completions(await history(store)) == []
