"""The PostgreSQL store's task claiming (``TaskStore``): leases, commits, action outcomes.

A commit is one round trip: ``durable_commit`` grouped with concurrent commits into one
transaction, or ``durable_commit_effects`` (``_effects``) in a transaction of its own when it
reaches other executions. Claims of hinted tasks can bring the history along (one statement).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Sequence
from typing import Any

from msgspec.structs import replace

from ..._history import Event, encode_event
from ..._queues import unroute
from ...errors import HistoryError
from .._commit import Committer
from .._records import (
    TERMINAL_STATUSES, ActionTask, Outcome, Reply, TaskRef, WorkflowCommit, WorkflowTask,
    action_dedup,
)
from . import _statements as sql
from ._connection import PostgresBase
from ._effects import COMMIT_EFFECTS, COMMIT_EFFECTS_FLOW, effect_columns, leased_variant
from ._rows import (
    ENDED_CHANNEL, REPLIED_CHANNEL, action_columns, action_from_row, action_key, encode,
    flow_columns, history_from_rows, notice, reply_columns, split_at_seq,
)

__all__ = ["PostgresTasks"]


class PostgresTasks(Committer, PostgresBase):
    """Workflow and action tasks in the ``workflow_tasks`` and ``action_tasks`` tables."""

    async def _commit(self, task: WorkflowTask, commit: WorkflowCommit) -> bool:
        """One round trip: ``COMMIT``, grouped with concurrent commits, or (with cancelled
        actions, starts or signals) ``COMMIT_EFFECTS`` in a transaction of its own, since it
        locks every execution it writes, in order, before it writes any. Replies add a
        statement to the same transaction."""
        effects = commit.cancelled_actions or commit.starts or commit.signals
        args = _commit_args(task, commit)
        if effects:
            args = (*args[:-2], *effect_columns(commit.cancelled_actions, commit.starts,
                                                commit.signals, commit.now, split_at_seq),
                    *args[-2:])
        args = (*args, self._store_time(commit.now))  # the last parameter of both
        statement = COMMIT_EFFECTS if effects else sql.COMMIT
        flow = flow_columns(task.tenant, task.workflow_id, commit.actions, commit.starts)
        if flow is not None:  # priorities other than the execution's: durable_flow after it
            args = (*args, *flow)
            statement = COMMIT_EFFECTS_FLOW if effects else sql.COMMIT_FLOW
        if commit.leased:  # eager actions: leased to the committer after it
            statement = leased_variant(statement)
            args = (*args, commit.actions[0].run_id, list(commit.leased), commit.lease_until)
        if commit.settled is not None:  # an action's outcome: recorded before it
            statement = sql.settling(statement, len(args))
            action, event = commit.settled.task, commit.settled.event
            args = (*args, action.run_id, action.cmd, encode_event(event), action_dedup(action))
        if commit.replies:
            return await self._commit_with_replies(args, commit.replies, statement)
        if effects:
            return bool(await self._fetchval(statement, *args))
        return bool(await self._grouped(statement, *args))

    async def _commit_with_replies(self, args: tuple[Any, ...], replies: Sequence[Reply],
                                   statement: str) -> bool:
        """A commit and the answers to requests, in one transaction (two statements)."""
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                done: bool = await conn.fetchval(statement, *args)
                if done:
                    await conn.execute(sql.ANSWER_REQUESTS, args[0], args[1],
                                       *reply_columns(replies), REPLIED_CHANNEL)
        except Exception as exc:
            raise await self._mapped(exc) from exc
        return done

    async def _finish(self, task: WorkflowTask, owner: str, expected_seq: int,
                      replies: Sequence[Reply], now: float) -> bool:
        args = (task.tenant, task.workflow_id, owner, expected_seq)
        if replies:
            return await self._commit_with_replies(args, replies, sql.FINISH)
        return bool(await self._fetchval(sql.FINISH, *args))

    async def claim_workflow_tasks(self, workflows: Collection[str], owner: str, *,
                                   lease: float, now: float, limit: int) -> list[WorkflowTask]:
        """Lease up to ``limit`` runnable workflow tasks of the named workflows."""
        if not workflows or limit <= 0:
            return []
        rows = await self._fetch(sql.CLAIM_WORKFLOW_TASKS, owner, now + lease, now,
                                 list(workflows), limit)
        tasks: list[WorkflowTask] = []
        for tenant, workflow_id, stored, attempt, requested in rows:
            workflow, queue = unroute(stored)
            tasks.append(WorkflowTask(tenant, workflow_id, workflow, attempt, requested=requested,
                                      queue=queue))
        return tasks

    async def release_workflow_task(self, task: WorkflowTask, owner: str, *, delay: float,
                                    error: str | None, now: float) -> None:
        """Give a leased workflow task back, to be retried after ``delay`` seconds."""
        await self._fetchval(sql.RELEASE, task.tenant, task.workflow_id, owner, now + delay,
                             error)

    async def claim_action_tasks(self, actions: Collection[str], owner: str, *, lease: float,
                                 now: float, limit: int) -> list[ActionTask]:
        """Lease up to ``limit`` due action tasks of the named actions."""
        if not actions or limit <= 0:
            return []
        rows = await self._fetch(sql.CLAIM_ACTION_TASKS, owner, now + lease, now, list(actions),
                                 limit)
        return [action_from_row(row) for row in rows]

    async def extend_action_lease(self, task: ActionTask, owner: str, *, lease: float,
                                  now: float) -> bool:
        """Keep a running action's lease alive; False if the lease was lost."""
        return bool(await self._fetchval(sql.EXTEND_ACTION, now + lease, *action_key(task),
                                         owner))

    async def hand_off_action(self, task: ActionTask, owner: str, holder: str, *,
                              until: float) -> bool:
        """Lease the task to ``holder`` until ``until``, if ``owner`` holds it."""
        return bool(await self._fetchval(sql.HAND_OFF_ACTION, holder, *action_key(task), until,
                                         owner))

    async def complete_action_task(self, task: ActionTask, event: Event, *, now: float) -> bool:
        """Record an action's outcome (first completion wins) and drop its task, atomically."""
        head, tail = split_at_seq(event, now)
        done: bool = await self._grouped(sql.COMPLETE_ACTION, *action_key(task), head, tail,
                                         action_dedup(task), now)
        if done:
            self.wakeup.notify()
        return done

    async def retry_action_task(self, task: ActionTask, owner: str, *, visible_at: float,
                                error: str, now: float) -> None:
        """Schedule the next attempt of a failed action at ``visible_at``."""
        await self._fetchval(sql.RETRY_ACTION, task.attempt + 1, *action_key(task), visible_at,
                             error, owner)

    async def claim_refs(self, refs: Sequence[TaskRef], owner: str, *, workflows: Collection[str],
                         actions: Collection[str], lease: float, now: float,
                         history_after: Callable[[str, str], int] | None = None,
                         ) -> tuple[list[WorkflowTask], list[ActionTask]]:
        """Lease the tasks these hints name if they are claimable now and hosted here; with
        ``history_after``, claimed workflow tasks bring their history (same round trip)."""
        hinted_workflows = [r for r in refs if r.kind == "w"] if workflows else []
        hinted_actions = [r for r in refs if r.kind == "a"] if actions else []
        claim = (owner, now + lease, now)
        if hinted_workflows and hinted_actions:
            claimed_workflows, claimed_actions = await asyncio.gather(
                self._claim_workflows(claim, workflows, hinted_workflows, history_after),
                self._claim_actions(claim, actions, hinted_actions))
            return claimed_workflows, claimed_actions
        if hinted_workflows:
            return await self._claim_workflows(claim, workflows, hinted_workflows,
                                               history_after), []
        if hinted_actions:
            return [], await self._claim_actions(claim, actions, hinted_actions)
        return [], []

    async def _claim_workflows(self, claim: tuple[str, float, float], workflows: Collection[str],
                               refs: list[TaskRef],
                               history_after: Callable[[str, str], int] | None,
                               ) -> list[WorkflowTask]:
        after = [None if history_after is None else history_after(r.tenant, r.workflow_id)
                 for r in refs]
        rows = await self._fetch(sql.CLAIM_WORKFLOW_REFS, *claim, list(workflows),
                                 [r.tenant for r in refs], [r.workflow_id for r in refs], after)
        found: dict[tuple[str, str], tuple[WorkflowTask, bool, list[Any]]] = {}
        for row in rows:
            tenant, workflow_id, stored, attempt, after_seq, requested = row[:6]
            if (tenant, workflow_id) not in found:
                workflow, queue = unroute(stored)
                task = WorkflowTask(tenant, workflow_id, workflow, attempt,
                                    after_seq=after_seq or 0, requested=requested, queue=queue)
                found[tenant, workflow_id] = (task, after_seq is not None, [])
            found[tenant, workflow_id][2].append(row[6:])
        return [_with_history(task, rows) if asked else task
                for task, asked, rows in found.values()]

    async def _claim_actions(self, claim: tuple[str, float, float], actions: Collection[str],
                             refs: list[TaskRef]) -> list[ActionTask]:
        rows = await self._fetch(sql.CLAIM_ACTION_REFS, *claim, list(actions),
                                 [r.tenant for r in refs], [r.workflow_id for r in refs],
                                 [r.run_id for r in refs], [r.cmd for r in refs])
        return [action_from_row(row) for row in rows]


def _with_history(task: WorkflowTask, rows: list[Any]) -> WorkflowTask:
    """The claimed task with the history its claim brought (``rows``: as ``SELECT_EVENTS``),
    checked; without, when that is damaged (the worker then reads it, and that read names the
    damage) or the execution is gone."""
    if rows[0][0] is None:
        return task
    try:
        history = history_from_rows(task.tenant, task.workflow_id, None, task.after_seq, rows)
    except HistoryError:
        return task
    return replace(task, history=history, run_id=rows[0][0])


def _commit_args(task: WorkflowTask, commit: WorkflowCommit) -> tuple[Any, ...]:
    """The parameters of ``COMMIT``: ``durable_commit``'s, then the NOTIFY channel and payload
    of the execution's end (None while it runs)."""
    update = commit.update
    error = None if update.error is None else encode(update.error)
    result = encode(update.result)
    ended = update.status in TERMINAL_STATUSES
    ending = notice(task, Outcome.of(task.workflow, update), result, error) if ended else None
    return (task.tenant, task.workflow_id, commit.owner, commit.expected_seq,
            [e.seq for e in commit.events], [encode_event(e) for e in commit.events],
            *action_columns(commit.actions), [t.cmd for t in commit.timers],
            [t.fire_at for t in commit.timers], commit.cancelled_timers, update.status,
            update.state, encode(update.data), result, error, commit.now, ENDED_CHANNEL,
            ending)

