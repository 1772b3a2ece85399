"""The SQLite store's half of a workflow-task commit: one write transaction.

``commit_txn`` writes a whole ``WorkflowCommit`` under the write lock once it has checked the
expected ``seq`` and the lease; the wake-ups after it are ``durable._stores._commit``'s.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Final

from ..._options import pack
from ..._queues import route
from .._records import (
    TERMINAL_STATUSES, Reply, Start, WorkflowCommit, WorkflowTask, action_dedup,
)
from . import _statements as sql
from ._connection import Row, changed
from ._executions import (
    append_txn, begin_run_txn, create_txn, drop_run_work_txn, insert_events_txn, signal_txn,
)
from ._requests import answer_txn
from ._rows import action_key, encode

__all__ = ["commit_txn", "finish_txn"]

_UNLEASED: Final = (None, 0.0)  # an action task's owner and lease_until until it is claimed


def finish_txn(conn: sqlite3.Connection, task: WorkflowTask, owner: str, expected_seq: int,
               replies: Sequence[Reply]) -> bool:
    """Drop a workflow task that recorded nothing and write its replies, if ``owner`` holds it
    and the history ends at ``expected_seq - 1``; whether it did."""
    key = (task.tenant, task.workflow_id)
    head = conn.execute(sql.SELECT_COMMIT_HEAD, key).fetchone()
    if head is None or head[1] != expected_seq - 1 or head[2] != owner:
        return False
    conn.execute(sql.DELETE_WORKFLOW_TASK, key)
    answer_txn(conn, task.tenant, task.workflow_id, replies)
    return True


def commit_txn(conn: sqlite3.Connection, task: WorkflowTask, commit: WorkflowCommit) -> bool:
    """Write ``commit`` if its owner holds the task and the history ends where it expects;
    whether it did (see ``TaskStore.commit_workflow_task``)."""
    key = (task.tenant, task.workflow_id)
    head = conn.execute(sql.SELECT_COMMIT_HEAD, key).fetchone()
    if head is None:
        return False
    run, update, now = (*key, head[0]), commit.update, commit.now
    if commit.settled is not None:
        # the outcome first, in the commit's insert; no task row to delete (none may exist)
        if not _settle_txn(conn, run, head, commit):
            return False
    elif head[1] != commit.expected_seq - 1 or head[2] != commit.owner:
        return False
    else:
        if commit.events:
            insert_events_txn(conn, run, commit.events)
        conn.execute(sql.DELETE_WORKFLOW_TASK, key)
    if update.status in TERMINAL_STATUSES:
        drop_run_work_txn(conn, run)
    else:
        _schedule_txn(conn, run, commit)
    error = None if update.error is None else encode(update.error)
    conn.execute(sql.UPDATE_EXECUTION, (commit.expected_seq + len(commit.events) - 1, now,
                                        update.status, update.state, encode(update.data),
                                        encode(update.result), error, *key))
    for start in commit.starts:
        _start_txn(conn, run, start, now)
    for signal in commit.signals:
        signal_txn(conn, signal, now)
    if commit.replies:
        answer_txn(conn, task.tenant, task.workflow_id, commit.replies)
    return True


def _settle_txn(conn: sqlite3.Connection, run: Row, head: Row, commit: WorkflowCommit) -> bool:
    """Record the outcome the commit settles and the commit's events after it, if
    ``Settled``'s conditions hold (``head``: as ``SELECT_COMMIT_HEAD``); whether they did.
    The commit then needs no task of its own; the caller records the execution's new head."""
    assert commit.settled is not None
    action, event = commit.settled.task, commit.settled.event
    _, last_seq, _, status, pending = head
    if run[2] != action.run_id or last_seq != event.seq - 1 or status in TERMINAL_STATUSES \
            or pending or commit.expected_seq != event.seq + 1:
        return False
    if not changed(conn, sql.DELETE_HELD_ACTION, (*action_key(action), commit.owner)):
        return False
    # False: recorded before (the task was left over, and is gone now); nothing else written
    return insert_events_txn(conn, run, [event, *commit.events], action_dedup(action))


def _start_txn(conn: sqlite3.Connection, run: Row, start: Start, now: float) -> None:
    """A commit's start: the committer's next run, or a new execution (see ``Store``)."""
    started = start.started
    if (started.tenant, started.workflow_id) == run[:2]:
        drop_run_work_txn(conn, run)
        conn.execute(sql.NEW_RUN, (started.run_id, route(started.workflow, started.queue),
                                   started.version, now,
                                   encode({}), encode(None), *run[:2]))
        begin_run_txn(conn, started, now)
        return
    _, created = create_txn(conn, started, now)
    feedback = start.on_started if created else start.on_exists
    if feedback is not None:
        append_txn(conn, run[0], run[1], feedback, None, now)


def _schedule_txn(conn: sqlite3.Connection, run: Row, commit: WorkflowCommit) -> None:
    """Write a commit's new action tasks and timers and drop the ones it cancelled.

    The new action tasks count as dispatched ``now``: the committing worker publishes them,
    or runs them, the ``leased`` ones, which are created leased to it.
    """
    if commit.actions:
        leased = commit.owner, commit.lease_until
        conn.executemany(sql.UPSERT_ACTION, [
            (*run, a.cmd, route(a.name, a.queue), encode(a.args), encode(pack(a.kwargs, a.options)),
             a.attempt, a.visible_at, a.last_error, a.priority, a.fairness_key or "", commit.now,
             *(leased if a.cmd in commit.leased else _UNLEASED))
            for a in commit.actions])
    if commit.timers:
        conn.executemany(sql.UPSERT_TIMER, [(*run, t.cmd, t.fire_at) for t in commit.timers])
    if commit.cancelled_timers:
        conn.executemany(sql.DELETE_TIMER, [(*run, cmd) for cmd in commit.cancelled_timers])
    if commit.cancelled_actions:
        conn.executemany(sql.DELETE_ACTION, [(*run, cmd) for cmd in commit.cancelled_actions])

