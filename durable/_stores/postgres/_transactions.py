"""The PostgreSQL store's database actions (``TaskStore.run_action_transaction``).

An attempt runs the action on a pooled connection inside ``conn.transaction(isolation=...)``
and inserts its outcome into ``action_results`` in that transaction (migration 0006): the
commit makes the user's writes and the outcome durable together. Then one statement moves the
outcome into the history and drops the action task. An attempt that finds an outcome already
there (its predecessor died between the two steps) only does the move, or nothing once it was
moved; one that ran concurrently conflicts with the row on insert and rolls back.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Final, Literal, cast


from ..._history import ActionCompleted
from .._records import ActionTask, action_dedup
from ._connection import PostgresBase
from ._rows import split_at_seq

__all__ = ["PostgresTransactions"]

Isolation = Literal["read_committed", "read_uncommitted", "serializable", "repeatable_read"]

logger = logging.getLogger("durable.store")

_KEY: Final = "tenant = $1 AND workflow_id = $2 AND run_id = $3 AND cmd = $4"
_MOVED: Final = f"SELECT moved FROM action_results WHERE {_KEY}"  # NULL: no outcome yet
_INSERT_RESULT: Final = (
    "INSERT INTO action_results (tenant, workflow_id, run_id, cmd, head, tail) "
    "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING true")
# $5 dedup key, $6 now. Already moved (by someone else): no row.
_FINISH: Final = f"""
WITH outcome AS (UPDATE action_results SET moved = true WHERE {_KEY} AND NOT moved
                 RETURNING head, tail)
SELECT durable_complete_action($1, $2, $3, $4, outcome.head, outcome.tail, $5, $6)
FROM outcome
"""


class _AlreadyRecorded(Exception):
    """Another attempt committed an outcome first: roll this one's writes back."""


class PostgresTransactions(PostgresBase):
    """``run_action_transaction`` on asyncpg."""

    transaction_driver: ClassVar[str | None] = "asyncpg"

    async def run_action_transaction(self, task: ActionTask,
                                     body: Callable[[Any], Awaitable[Any]], *,
                                     isolation: str, now: float) -> bool:
        """Run ``body(conn)`` and record its outcome in one transaction (see ``TaskStore``)."""
        key = (task.tenant, task.workflow_id, task.run_id, task.cmd)
        async with self._pool.acquire() as conn:
            moved = await self._guarded(conn.fetchval(_MOVED, *key))
            if moved:
                return False  # done before: this is a stale attempt
            if moved is None:
                try:
                    await self._transact(conn, task, body, isolation, now)
                except _AlreadyRecorded:
                    pass
            try:
                done = await self._guarded(conn.fetchval(_FINISH, *key,
                                                         action_dedup(task), now))
            except Exception:  # committed: whoever takes the task over finishes the move
                logger.warning("database action %s: outcome committed, not yet in the history; "
                               "it is moved there when the task is taken up again", task.name,
                               exc_info=True)
                return False
        if done:
            self.wakeup.notify()
        return bool(done)

    async def _transact(self, conn: Any, task: ActionTask,
                        body: Callable[[Any], Awaitable[Any]], isolation: str,
                        now: float) -> None:
        key = (task.tenant, task.workflow_id, task.run_id, task.cmd)
        async with conn.transaction(isolation=cast(Isolation, isolation)):
            result = await body(conn)  # the action's own errors propagate as they are
            head, tail = split_at_seq(ActionCompleted(0, now, task.cmd, result, task.attempt),
                                      now)
            if not await self._guarded(conn.fetchval(_INSERT_RESULT, *key, head, tail)):
                raise _AlreadyRecorded

    async def _guarded(self, call: Awaitable[Any]) -> Any:
        """The store's own statement, with driver errors mapped as everywhere in the store."""
        try:
            return await call
        except Exception as exc:
            raise await self._mapped(exc) from exc
