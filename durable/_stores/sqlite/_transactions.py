"""The SQLite store's database actions (``TaskStore.run_action_transaction``).

An attempt runs the action, a plain function, on the store's thread with the store's
``sqlite3.Connection`` inside one ``BEGIN IMMEDIATE`` transaction, which then appends the
``ActionCompleted`` and drops the action task: one commit, or a rollback of everything when the
action raises or its completion was recorded before (its dedup key is in the history). SQLite
transactions are serializable, which honours every isolation level an action asks for; while
the action runs it holds the file's write lock, so keep it short.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any, ClassVar

from ..._history import ActionCompleted
from ...errors import StoreUnavailableError
from .._records import ActionTask
from ._connection import SQLiteBase, in_transaction
from ._tasks import complete_action_txn

__all__ = ["SQLiteTransactions"]


class _NotRecorded(Exception):
    """The completion was recorded by an earlier attempt (or the execution ended): roll back."""


class _ActionRaised(Exception):
    """Carries the action's own exception past the store's driver-error mapping."""


class SQLiteTransactions(SQLiteBase):
    """``run_action_transaction`` on sqlite3."""

    transaction_driver: ClassVar[str | None] = "sqlite3"

    async def run_action_transaction(self, task: ActionTask, body: Callable[[Any], Any], *,
                                     isolation: str, now: float) -> bool:
        """Run ``body(conn)`` and record its outcome in one transaction (see ``TaskStore``)."""
        try:
            done = await self._run(_action_txn, task, body, now)
        except _ActionRaised as raised:
            assert raised.__cause__ is not None
            raise raised.__cause__ from None
        if done:
            self.wakeup.notify()
        return done


def _action_txn(conn: sqlite3.Connection, task: ActionTask, body: Callable[[Any], Any],
                now: float) -> bool:
    try:
        return in_transaction(conn, _body_and_completion, task, body, now)
    except _NotRecorded:
        return False


def _body_and_completion(conn: sqlite3.Connection, task: ActionTask,
                         body: Callable[[Any], Any], now: float) -> bool:
    try:
        result = body(conn)
    except BaseException as exc:
        raise _ActionRaised() from exc
    if not conn.in_transaction:
        raise _ActionRaised() from StoreUnavailableError(
            f"database action {task.name!r} ended the transaction it was given (commit or "
            "rollback): leave that to durable, which commits it with the action's completion")
    if not complete_action_txn(conn, task, ActionCompleted(0, now, task.cmd, result,
                                                           task.attempt), now):
        raise _NotRecorded
    return True
