"""Database actions through the worker: ``@durable.action(transaction=True)`` on SQLite and
PostgreSQL, with a user's table in the store's own database; misuse as typed errors."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import asyncpg
import pytest

import durable
from durable._history import ActionCompleted, ActionFailed, ActionScheduled
from durable.errors import DatabaseActionError, WorkflowFailedError

FAST = durable.Retry(attempts=3, initial=0.0)


# ---- PostgreSQL: async def actions receiving an asyncpg connection ---------------------------


@durable.action(name="dbact_pg_deposit", transaction=True, isolation="repeatable_read",
                retry=FAST)
async def pg_deposit(conn: asyncpg.Connection, account: str, amount: int) -> int:
    info = durable.action_info()
    await conn.execute("INSERT INTO ledger VALUES ($1, $2, $3)", account, amount, info.attempt)
    if account == "flaky" and info.attempt == 1:
        raise RuntimeError("lost the race")  # rolls the insert back; retried
    if account == "broken":
        raise durable.NonRetryable("account closed")
    balance: int = await conn.fetchval("SELECT sum(amount) FROM ledger WHERE account = $1",
                                       account)
    return balance


@durable.workflow(name="DbActPgFlow")
async def pg_flow(ctx: durable.Context, account: str) -> int:
    first = await ctx.run(pg_deposit, account, 10)
    second = await ctx.run(pg_deposit, account, 5)
    return first + second


# ---- SQLite: plain functions receiving the store's sqlite3 connection ------------------------


@durable.action(name="dbact_sqlite_deposit", transaction=True, retry=FAST)
def sqlite_deposit(conn: sqlite3.Connection, account: str, amount: int) -> int:
    info = durable.action_info()
    conn.execute("INSERT INTO ledger VALUES (?, ?, ?)", (account, amount, info.attempt))
    if account == "flaky" and info.attempt == 1:
        raise RuntimeError("lost the race")
    if account == "broken":
        raise durable.NonRetryable("account closed")
    return int(conn.execute("SELECT sum(amount) FROM ledger WHERE account = ?",
                            (account,)).fetchone()[0])


@durable.workflow(name="DbActSqliteFlow")
async def sqlite_flow(ctx: durable.Context, account: str) -> int:
    first = await ctx.run(sqlite_deposit, account, 10)
    second = await ctx.run(sqlite_deposit, account, 5)
    return first + second


@pytest.fixture(params=["sqlite", "postgres"])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Any, Any]:
    """(store URL, workflow, action) of each store that has transactions."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db.db'}", sqlite_flow, sqlite_deposit
    return str(request.getfixturevalue("pg_database")), pg_flow, pg_deposit


async def ledger(url: str, statement: str) -> list[tuple[Any, ...]]:
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url[len("sqlite:///"):])
        try:
            with conn:
                rows = [tuple(r) for r in conn.execute(statement)]
        finally:
            conn.close()
        return rows
    pg = await asyncpg.connect(url)
    try:
        return [tuple(r) for r in await pg.fetch(statement)]
    finally:
        await pg.close()


CREATE = "CREATE TABLE ledger (account TEXT NOT NULL, amount INTEGER NOT NULL, attempt INTEGER)"


async def test_writes_take_effect_once_in_the_users_table(setup: tuple[str, Any, Any]) -> None:
    url, flow, action = setup
    async with durable.connect(url) as client:
        await ledger(url, CREATE)
        handle = await client.start(flow, "alice", id="flow-alice")
        await durable.Worker(client, workflows=[flow], actions=[action]).run_until_idle()
        assert await handle.result(timeout=10) == 10 + 15
        history = await handle.history()
    assert await ledger(url, "SELECT account, amount, attempt FROM ledger ORDER BY amount") == [
        ("alice", 5, 1), ("alice", 10, 1)]
    scheduled = [e for e in history if isinstance(e, ActionScheduled)]
    assert [e.args for e in scheduled] == [["alice", 10], ["alice", 5]]  # no connection in it
    assert [e.result for e in history if isinstance(e, ActionCompleted)] == [10, 15]


async def test_a_transaction_that_rolls_back_records_nothing_and_is_retried(
        setup: tuple[str, Any, Any]) -> None:
    url, flow, action = setup
    async with durable.connect(url) as client:
        await ledger(url, CREATE)
        handle = await client.start(flow, "flaky", id="flow-flaky")
        await durable.Worker(client, workflows=[flow], actions=[action]).run_until_idle()
        assert await handle.result(timeout=10) == 25
        history = await handle.history()
    # attempt 1 of each call wrote a row and raised: rolled back; attempt 2 committed
    assert await ledger(url, "SELECT amount, attempt FROM ledger ORDER BY amount") == [
        (5, 2), (10, 2)]
    completed = [e for e in history if isinstance(e, ActionCompleted)]
    assert [(e.result, e.attempt) for e in completed] == [(10, 2), (15, 2)]
    assert not [e for e in history if isinstance(e, ActionFailed)]


async def test_a_failed_database_action_fails_the_call_and_keeps_no_writes(
        setup: tuple[str, Any, Any]) -> None:
    url, flow, action = setup
    async with durable.connect(url) as client:
        await ledger(url, CREATE)
        handle = await client.start(flow, "broken", id="flow-broken")
        await durable.Worker(client, workflows=[flow], actions=[action]).run_until_idle()
        with pytest.raises(WorkflowFailedError, match="account closed"):
            await handle.result(timeout=10)
    assert await ledger(url, "SELECT * FROM ledger") == []


async def test_database_actions_never_run_inline(setup: tuple[str, Any, Any]) -> None:
    url, flow, action = setup
    async with durable.connect(url) as client:
        await ledger(url, CREATE)
        handle = await client.start(flow, "bob", id="flow-bob")
        worker = durable.Worker(client, workflows=[flow], actions=[action])
        assert not worker._workflow_runner._inline(  # even with a short timeout
            durable._stores.ActionTask("t", "w", "r", 1, action.__durable_action__.name, [], {}))
        await worker.run_until_idle()
        assert await handle.result(timeout=10) == 25


# ---- misuse ---------------------------------------------------------------------------------


async def test_a_store_without_transactions_is_refused_when_the_worker_is_made() -> None:
    async with durable.connect("memory://") as client:
        with pytest.raises(DatabaseActionError, match="memory:// has none") as caught:
            durable.Worker(client, workflows=[sqlite_flow], actions=[sqlite_deposit])
    assert caught.value.action == "dbact_sqlite_deposit"  # type: ignore[attr-defined]


async def test_the_wrong_kind_of_function_for_the_store_is_refused(tmp_path: Path,
                                                                  pg_database: str) -> None:
    async with durable.connect(f"sqlite:///{tmp_path / 'k.db'}") as client:
        with pytest.raises(DatabaseActionError, match="plain def taking a sqlite3.Connection"):
            durable.Worker(client, actions=[pg_deposit])
    async with durable.connect(pg_database) as client:
        with pytest.raises(DatabaseActionError, match="async def taking an asyncpg.Connection"):
            durable.Worker(client, actions=[sqlite_deposit])


@pytest.mark.parametrize("options, reason", [
    ({"transaction": True, "isolation": "snapshot"}, "isolation"),
    ({"isolation": "serializable"}, "isolation without transaction"),
    ({"transaction": True, "inline": True}, "inline"),
])
def test_bad_declarations_are_typed_errors(options: dict[str, Any], reason: str) -> None:
    with pytest.raises(DatabaseActionError) as caught:
        @durable.action(name="dbact_bad", **options)
        async def bad(conn: Any) -> None: ...
    assert caught.value.reason == reason  # type: ignore[attr-defined]


def test_a_database_action_needs_a_connection_parameter() -> None:
    with pytest.raises(DatabaseActionError, match="first parameter for its connection"):
        @durable.action(name="dbact_noconn", transaction=True)
        async def no_connection() -> None: ...


async def test_a_double_stands_in_for_a_database_action_under_the_test_environment() -> None:
    from durable.testing import Environment

    calls: list[tuple[Any, str, int]] = []

    async def fake_deposit(conn: asyncpg.Connection, account: str, amount: int) -> int:
        calls.append((conn, account, amount))
        return amount

    async with Environment(workflows=[pg_flow], actions=[pg_deposit],
                           doubles={pg_deposit: fake_deposit}) as env:
        handle = await env.client.start(pg_flow, "carol", id="carol")
        assert await handle.result() == 15
    assert calls == [(None, "carol", 10), (None, "carol", 5)]  # no connection on memory://
