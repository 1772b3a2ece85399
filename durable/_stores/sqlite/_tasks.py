"""The SQLite store's task claiming (``TaskStore``): leases, commits and action outcomes.

Claims first look for due work with a plain read and take the write lock only when there is
some (idle pollers in many processes stay cheap); the commit is ``_commit.commit_txn``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Collection, Sequence
from typing import Final

from ..._history import Event
from ..._queues import unroute
from ...errors import WorkflowNotFoundError
from .._commit import Committer
from .._records import (
    ActionTask, Reply, TaskRef, WorkflowCommit, WorkflowTask, action_dedup,
)
from . import _statements as sql
from ._commit import commit_txn, finish_txn
from ._connection import Row, SQLiteBase, changed, in_transaction
from ._executions import append_txn
from ._rows import action_from_row, action_key

__all__ = ["SQLiteTasks", "complete_action_txn"]


class SQLiteTasks(Committer, SQLiteBase):
    """Workflow and action tasks in the ``workflow_tasks`` and ``action_tasks`` tables."""

    async def _commit(self, task: WorkflowTask, commit: WorkflowCommit) -> bool:
        return await self._write(commit_txn, task, commit)

    async def _finish(self, task: WorkflowTask, owner: str, expected_seq: int,
                      replies: Sequence[Reply], now: float) -> bool:
        return await self._write(finish_txn, task, owner, expected_seq, replies)

    async def claim_workflow_tasks(self, workflows: Collection[str], owner: str, *,
                                   lease: float, now: float, limit: int) -> list[WorkflowTask]:
        """Lease up to ``limit`` runnable workflow tasks of the named workflows."""
        query = (now, json.dumps(list(workflows)), limit)
        return await self._run(_claim_workflow_tasks, query, owner, now + lease)

    async def release_workflow_task(self, task: WorkflowTask, owner: str, *, delay: float,
                                    error: str | None, now: float) -> None:
        """Give a leased workflow task back, to be retried after ``delay`` seconds."""
        await self._write(_release_txn, task, owner, now + delay, error)

    async def claim_action_tasks(self, actions: Collection[str], owner: str, *, lease: float,
                                 now: float, limit: int) -> list[ActionTask]:
        """Lease up to ``limit`` due action tasks of the named actions."""
        query = (now, json.dumps(list(actions)), limit)
        return await self._run(_claim_action_tasks, query, owner, now + lease)

    async def extend_action_lease(self, task: ActionTask, owner: str, *, lease: float,
                                  now: float) -> bool:
        """Keep a running action's lease alive; False if the lease was lost."""
        params = (now + lease, *action_key(task), owner)
        return await self._write(changed, sql.EXTEND_ACTION, params)

    async def hand_off_action(self, task: ActionTask, owner: str, holder: str, *,
                              until: float) -> bool:
        """Lease the task to ``holder`` until ``until``, if ``owner`` holds it."""
        params = (holder, until, *action_key(task), owner)
        return await self._write(changed, sql.HAND_OFF_ACTION, params)

    async def complete_action_task(self, task: ActionTask, event: Event, *, now: float) -> bool:
        """Record an action's outcome (first completion wins) and drop its task, atomically."""
        done = await self._write(complete_action_txn, task, event, now)
        if done:
            self.wakeup.notify()
        return done

    async def retry_action_task(self, task: ActionTask, owner: str, *, visible_at: float,
                                error: str, now: float) -> None:
        """Schedule the next attempt of a failed action at ``visible_at``."""
        params = (task.attempt + 1, visible_at, error, *action_key(task), owner)
        await self._write(changed, sql.RETRY_ACTION, params)

    async def claim_refs(self, refs: Sequence[TaskRef], owner: str, *, workflows: Collection[str],
                         actions: Collection[str], lease: float, now: float,
                         history_after: Callable[[str, str], int] | None = None,
                         ) -> tuple[list[WorkflowTask], list[ActionTask]]:
        """Lease the tasks these hints name if they are claimable now and hosted here."""
        wanted = [r for r in refs if (workflows if r.kind == "w" else actions)]
        if not wanted:
            return [], []
        return await self._write(_claim_refs_txn, wanted, owner, frozenset(workflows),
                                 frozenset(actions), now, now + lease)


def claim_rows(conn: sqlite3.Connection, statements: tuple[str, str, str],
               query: Row) -> list[Row]:
    """Up to ``query``'s limit of due tasks in claim order: higher priority first; then in
    turns across (tenant, fairness key) partitions, a partition's k-th of a priority having
    turn k plus the number of its tasks leased now; then due time. ``statements``:
    ``NEXT_*_PARTITION``, ``RUNNING_*`` and ``SELECT_DUE_*``, whose rows end with their
    priority and due time, which are dropped."""
    next_partition, running, due = statements
    now = query[0]
    ranked: list[tuple[int, int, float, Row]] = []
    partition = conn.execute(next_partition, (now, "", "")).fetchone()
    while partition is not None:
        leased: int = conn.execute(running, (*partition, now)).fetchone()[0]
        turns: dict[int, int] = {}
        for row in conn.execute(due, (*query, *partition)).fetchall():
            priority = row[-2]
            turns[priority] = turn = turns.get(priority, leased) + 1
            ranked.append((-priority, turn, row[-1], row[:-2]))
        partition = conn.execute(next_partition, (now, *partition)).fetchone()
    ranked.sort(key=lambda r: (r[0], r[1], r[2]))
    return [row for *_, row in ranked[:query[2]]]


_WORKFLOW_TURNS: Final = (sql.NEXT_WORKFLOW_PARTITION, sql.RUNNING_WORKFLOW_TASKS,
                          sql.SELECT_DUE_WORKFLOW_TASKS)
_ACTION_TURNS: Final = (sql.NEXT_ACTION_PARTITION, sql.RUNNING_ACTIONS, sql.SELECT_DUE_ACTIONS)


def _claim_workflow_tasks(conn: sqlite3.Connection, query: Row, owner: str,
                          until: float) -> list[WorkflowTask]:
    if conn.execute(sql.NEXT_WORKFLOW_PARTITION, (query[0], "", "")).fetchone() is None:
        return []  # nothing due: do not take the write lock (idle pollers stay cheap)
    return in_transaction(conn, _claim_workflow_txn, query, owner, until)


def _claim_workflow_txn(conn: sqlite3.Connection, query: Row, owner: str,
                        until: float) -> list[WorkflowTask]:
    rows = claim_rows(conn, _WORKFLOW_TURNS, query)
    conn.executemany(sql.LEASE_WORKFLOW_TASK, [(owner, until, row[0], row[1]) for row in rows])
    return [WorkflowTask(t, w, *_split(stored, attempt + 1, bool(requested)))
            for t, w, stored, attempt, requested in rows]


def _split(stored: str, attempt: int, requested: bool) -> tuple[str, int, None, int, str, bool,
                                                                str]:
    """The fields of a claimed ``WorkflowTask`` after its ids, from its stored route."""
    name, queue = unroute(stored)
    return name, attempt, None, 0, "", requested, queue


def _release_txn(conn: sqlite3.Connection, task: WorkflowTask, owner: str, visible_at: float,
                 error: str | None) -> None:
    key = (task.tenant, task.workflow_id)
    released = changed(conn, sql.RELEASE_WORKFLOW_TASK, (visible_at, *key, owner))
    if released and error is not None:
        conn.execute(sql.SET_TASK_ERROR, (error, *key))


def _claim_action_tasks(conn: sqlite3.Connection, query: Row, owner: str,
                        until: float) -> list[ActionTask]:
    if conn.execute(sql.NEXT_ACTION_PARTITION, (query[0], "", "")).fetchone() is None:
        return []  # nothing due: do not take the write lock
    return in_transaction(conn, _claim_action_txn, query, owner, until)


def _claim_action_txn(conn: sqlite3.Connection, query: Row, owner: str,
                      until: float) -> list[ActionTask]:
    # A task whose lease expired was claimed before: its worker died, so that was an attempt.
    tasks = [action_from_row(row[:-1], reclaimed=row[-1])
             for row in claim_rows(conn, _ACTION_TURNS, query)]
    conn.executemany(sql.LEASE_ACTION, [(owner, until, t.attempt, *action_key(t)) for t in tasks])
    return tasks


def _claim_refs_txn(conn: sqlite3.Connection, refs: Sequence[TaskRef], owner: str,
                    workflows: frozenset[str], actions: frozenset[str], now: float,
                    until: float) -> tuple[list[WorkflowTask], list[ActionTask]]:
    """Lease each hinted task that is claimable now; skip stale hints (done, leased, unknown)."""
    claimed_workflows: list[WorkflowTask] = []
    claimed_actions: list[ActionTask] = []
    for ref in refs:
        if ref.kind == "w":
            row = conn.execute(sql.SELECT_HINTED_WORKFLOW_TASK, (ref.tenant, ref.workflow_id, now))
            found = row.fetchone()
            if found is not None and found[0] in workflows:
                conn.execute(sql.LEASE_WORKFLOW_TASK, (owner, until, ref.tenant, ref.workflow_id))
                claimed_workflows.append(WorkflowTask(ref.tenant, ref.workflow_id,
                                                      *_split(found[0], found[1] + 1,
                                                              bool(found[2]))))
            continue
        key = (ref.tenant, ref.workflow_id, ref.run_id, ref.cmd)
        hit = conn.execute(sql.SELECT_HINTED_ACTION, (*key, now)).fetchone()
        if hit is not None and hit[4] in actions:  # the stored name is the route
            task = action_from_row(hit[:-1], reclaimed=hit[-1])
            conn.execute(sql.LEASE_ACTION, (owner, until, task.attempt, *key))
            claimed_actions.append(task)
    return claimed_workflows, claimed_actions


def complete_action_txn(conn: sqlite3.Connection, task: ActionTask, event: Event,
                        now: float) -> bool:
    conn.execute(sql.DELETE_ACTION, action_key(task))
    try:
        seq = append_txn(conn, task.tenant, task.workflow_id, event,
                         action_dedup(task), now, task.run_id)
    except WorkflowNotFoundError:
        return False
    return seq is not None

