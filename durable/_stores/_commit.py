"""The end of a workflow task, once for every store: the backend writes, this wakes waiters.

``commit_workflow_task`` and ``finish_workflow_task`` are defined here alone. A backend
supplies the writes (``_commit``: the whole ``WorkflowCommit`` in one transaction, or nothing;
``_finish``: drop the task and write its replies), and once a write returned True this
process's waiters are woken, the same way for every store:

* pollers (``Wakeup.notify``), when the commit made work runnable or due: action tasks,
  timers, new executions or runs, inputs for other executions;
* the execution's result waiters (``Wakeup.ended``, with the outcome), when it ended;
* the callers waiting for a request the commit answered (``Wakeup.answered``).

Nothing is woken after a write that returned False: it changed nothing.
"""

from __future__ import annotations

import abc
from typing import Sequence

from ._records import TERMINAL_STATUSES, Outcome, Reply, WorkflowCommit, WorkflowTask
from ._store_clock import StoreClocked
from ._wakeup import Wakeup

__all__ = ["Committer"]


class Committer(StoreClocked, abc.ABC):
    """A store's ``commit_workflow_task`` and ``finish_workflow_task`` over its write hooks."""

    wakeup: Wakeup

    async def commit_workflow_task(self, task: WorkflowTask, commit: WorkflowCommit) -> bool:
        """Write ``commit`` and end the task, atomically (see ``TaskStore``)."""
        commit = self._due_on_store_clock(commit)  # its timers, on the store's clock
        if not await self._commit(task, commit):
            return False
        if commit.actions or commit.timers or commit.starts or commit.signals:
            self.wakeup.notify()
        if commit.update.status in TERMINAL_STATUSES:
            self.wakeup.ended(task.tenant, task.workflow_id,
                              Outcome.of(task.workflow, commit.update))
        self.wakeup.answered(task.tenant, task.workflow_id, commit.replies)
        return True

    async def finish_workflow_task(self, task: WorkflowTask, owner: str, expected_seq: int, *,
                                   replies: Sequence[Reply], now: float) -> bool:
        """Drop a task that recorded nothing and write its replies (see ``TaskStore``)."""
        if not await self._finish(task, owner, expected_seq, replies, now):
            return False
        self.wakeup.answered(task.tenant, task.workflow_id, replies)
        return True

    @abc.abstractmethod
    async def _commit(self, task: WorkflowTask, commit: WorkflowCommit) -> bool:
        """Write ``commit`` in one transaction if the history ends at
        ``commit.expected_seq - 1`` and ``commit.owner`` holds the task; whether it did."""

    @abc.abstractmethod
    async def _finish(self, task: WorkflowTask, owner: str, expected_seq: int,
                      replies: Sequence[Reply], now: float) -> bool:
        """Drop the task and write ``replies`` in one transaction, under the same conditions
        as ``_commit``; whether it did."""
