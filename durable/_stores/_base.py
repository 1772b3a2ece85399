"""The ``Store`` protocol, split into the roles its callers use.

A store keeps, per tenant: executions (one row per workflow id, pointing at its current run),
their append-only histories, three kinds of work: workflow tasks (an execution has inputs
to run), action tasks (an action to run) and timers (a durable timer to fire), requests
(queries and updates waiting for the workflow's worker to answer them), schedules and
snapshots; and how long closed executions are kept (``_retention``). Each role below is one of those concerns; ``Store`` is all of them, and a caller
that needs one role names that role.

Invariants every implementation keeps (the conformance suite checks them):

* ``seq`` is dense per run; ``commit_workflow_task`` names the ``seq`` it expects and appends
  nothing if the history grew since.
* ``append_input`` with a ``dedup`` key appends at most once per run for that key, and never
  after a terminal event.
* An action's outcome is recorded only in the run that scheduled it.
* A workflow-task commit and everything it causes elsewhere (new executions, the next run of
  the execution, inputs appended to other executions) happen in one transaction, or not at all.
* A request is answered at most once: ``answer_requests`` (and the replies of a commit) only
  change requests that are still pending or accepted.
* Every read and write is scoped by tenant.
* Every stored event carries a checksum chained to the one before it in its run (see
  ``_integrity``), and every read of a history checks the rows it returns: damage is a
  ``HistoryError`` naming the tenant, workflow id, run and seq, never a silent replay.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Collection, Protocol, Sequence

from .._history import Event
from .._limits import Hold, Limit
from ._records import (
    ActionTask, ExecutionRecord, Reply, Request, RunCheck, Signal, Snapshot, TaskRef,
    TimerRecord, WorkflowCommit, WorkflowTask,
)
from ._listing import Cursor, ExecutionQuery
from ._liveness import HeartbeatStore, WorkerStore
from ._retention import RetentionStore
from ._schedule_records import ScheduleRecord
from ._backlog import Backlog
from ._wakeup import Wakeup

__all__ = ["ExecutionStore", "HostStore", "RequestStore", "ScheduleStore", "SnapshotStore", "Store",
           "TaskStore", "TimerStore"]


class ExecutionStore(Protocol):
    """Executions and their histories: create, read, append inputs."""

    async def create_execution(self, started: Event, *, now: float,
                               lease_to: tuple[str, float] | None = None,
                               ) -> tuple[ExecutionRecord, bool]:
        """Create an execution from its ``WorkflowStarted`` event (seq 1) and a workflow task.

        If the tenant already has an execution with that workflow id, return it and False.
        With ``lease_to=(owner, lease_until)`` the workflow task is created already leased to
        ``owner`` (its first claim: eager start, the caller runs it at once).
        """
        ...

    async def restart_execution(self, started: Event, *, run_id: str, now: float,
                                end: Event | None = None,
                                signals: Sequence[Signal] = ()) -> bool:
        """Start ``started`` (a ``WorkflowStarted``) as the next run of its execution, whose
        current run must be ``run_id``; atomically, and only then: whether it did.

        Nothing changes (False) when there is no such execution, its current run is another
        (a concurrent start or a continue-as-new got there first), or run ``run_id`` still runs
        and no ``end`` was given. A running run first gets ``end`` (a ``WorkflowTerminated``)
        appended at its next seq. Then, as a continue-as-new does, the run's action tasks,
        timers and workflow task (with its lease) are dropped and the execution switches to
        the new run, with ``started``'s seq 1 and a runnable workflow task; unlike one, it
        takes ``started``'s queue, priority and fairness key, and ``created_at`` becomes
        ``now``. ``signals`` are appended last (as a commit's), e.g. the old run's end to its
        parent. The old run's rows stay, readable by its run id.
        """
        ...

    async def get_execution(self, tenant: str, workflow_id: str) -> ExecutionRecord | None:
        """The execution, or None."""
        ...

    async def list_executions(self, tenant: str | None = None, *, status: str | None = None,
                              limit: int = 100) -> list[ExecutionRecord]:
        """Executions, newest first; all tenants when ``tenant`` is None."""
        ...

    async def scan_executions(self, tenant: str | None = None, *, workflow: str | None = None,
                              status: str | None = None, since: float | None = None,
                              after: ExecutionRecord | None = None,
                              limit: int = 500) -> list[ExecutionRecord]:
        """Up to ``limit`` executions, oldest first (by ``created_at``, tenant, workflow id).

        Filters: tenant (all when None), workflow name, status, created at or after
        ``since``. Paging: ``after`` is the last record of the previous page.
        """
        ...

    async def page_executions(self, query: ExecutionQuery, *, after: Cursor | None = None,
                              limit: int = 50) -> list[ExecutionRecord]:
        """Up to ``limit`` executions that ``query`` selects, newest first (by ``created_at``,
        workflow id, tenant), after the cursor ``after`` (``_listing.cursor_of`` of the
        previous page's last row): keyset paging that reads from an index starting there."""
        ...

    async def count_executions(self, query: ExecutionQuery, *, cap: int) -> dict[str, int]:
        """How many executions of each of ``_listing.LIST_STATUSES`` match ``query`` (its
        status aside), each counted up to ``cap`` (reading at most ``cap`` index entries)."""
        ...

    async def read_history(self, tenant: str, workflow_id: str, *, run_id: str | None = None,
                           after_seq: int = 0, limit: int | None = None) -> list[Event]:
        """Events with ``seq > after_seq`` of the run (default: the current one), in order;
        at most ``limit`` of them (None: all).

        The rows are checked first (dense seqs, their checksums, decoding; read to the end,
        the run ends where it must): damage raises ``HistoryError``.
        """
        ...

    async def verify_history(self, tenant: str, workflow_id: str) -> list[RunCheck]:
        """Check every row of every run of the execution (none if there is no such one)."""
        ...

    async def append_input(self, tenant: str, workflow_id: str, event: Event, *,
                           dedup: str | None = None, now: float) -> int | None:
        """Append an input at the next ``seq`` and make the execution runnable.

        Returns the new ``seq``; None when the execution has ended or ``dedup`` was seen before.
        Raises ``WorkflowNotFoundError`` when there is no such execution.
        """
        ...

    async def pending_work(self, tenant: str,
                           workflow_id: str) -> tuple[list[ActionTask], list[TimerRecord]]:
        """The execution's action tasks and timers that have not finished."""
        ...


class TaskStore(Protocol):
    """Task claiming: lease workflow and action tasks, and end them with their outcome."""

    # The driver whose connection a database action receives ("asyncpg", "sqlite3"), or None
    # when the store has no transactions (memory).
    transaction_driver: ClassVar[str | None]

    async def claim_workflow_tasks(self, workflows: Collection[str], owner: str, *,
                                   lease: float, now: float, limit: int) -> list[WorkflowTask]:
        """Lease up to ``limit`` runnable workflow tasks of the named workflows."""
        ...

    async def commit_workflow_task(self, task: WorkflowTask, commit: WorkflowCommit) -> bool:
        """Write ``commit`` (see ``WorkflowCommit``) and end the task, atomically.

        Returns False and changes nothing when the history no longer ends at
        ``commit.expected_seq - 1`` or ``commit.owner`` does not hold the task. On success the
        workflow task is done; a terminal ``commit.update`` also drops the execution's
        remaining action tasks and timers. In the same transaction, after the update:

        * the run's action tasks numbered in ``cancelled_actions`` are dropped (an attempt
          that is running finds its lease gone at its next heartbeat);
        * each of ``starts``, in order, is created: one that names the committing execution
          is its next run (continue-as-new: the current run's remaining action tasks and
          timers are dropped, the execution switches to the new run with its ``created_at``
          kept and nothing else carried over, and a workflow task is made runnable); any
          other is a new execution, as with ``create_execution``, unless its workflow id is
          taken (see ``Start`` for what the committer is told);
        * each of ``signals``, in order, is appended (see ``Signal``), after the starts;
        * ``replies`` answer the execution's requests (as ``answer_requests`` does).

        The workflow tasks this makes runnable count as dispatched: the committer publishes
        their hints.
        """
        ...

    async def finish_workflow_task(self, task: WorkflowTask, owner: str, expected_seq: int, *,
                                   replies: Sequence[Reply], now: float) -> bool:
        """Finish a workflow task that recorded nothing (it answered requests): drop the task
        and write ``replies``, atomically, leaving the execution as it is.

        Returns False and changes nothing when ``owner`` does not hold the task or the history
        no longer ends at ``expected_seq - 1`` (an input arrived: run the task again).
        """
        ...

    async def release_workflow_task(self, task: WorkflowTask, owner: str, *, delay: float,
                                    error: str | None, now: float) -> None:
        """Give a leased workflow task back, to be retried after ``delay`` seconds."""
        ...

    async def claim_action_tasks(self, actions: Collection[str], owner: str, *, lease: float,
                                 now: float, limit: int) -> list[ActionTask]:
        """Lease up to ``limit`` due action tasks of the named actions."""
        ...

    async def claim_limited(self, route: str, limit: Limit | None, owner: str, *, lease: float,
                            now: float, limit_count: int = 0,
                            queue_limit: Limit | None = None) -> list[ActionTask]:
        """Lease up to ``limit_count`` due tasks of the action ``route`` (a route: its name on
        its queue) as far as its ``limit`` and its queue's ``queue_limit`` allow (see
        ``durable._limits``), atomically with respect to every other claim of that action or
        queue."""
        ...

    async def hold_limited(self, holds: Sequence[Hold], owner: str, *, lease: float,
                           now: float) -> list[tuple[int, int]]:
        """For each hold, in one transaction: hold slots of its bucket for ``owner`` until
        ``now + lease`` (replacing what ``owner`` held there) and take tokens, as far as the
        bucket's limit allows (``durable._limits.grant``); what each got, (slots, tokens)."""
        ...

    async def limit_waits(self, keys: Collection[str], *, now: float) -> dict[str, str]:
        """Why tasks wait for the limits of these buckets (action routes, or queues' buckets,
        ``durable._limits.queue_bucket``), by key: those at their limit as of the last claim
        (``durable._limits.waits``)."""
        ...

    async def extend_action_lease(self, task: ActionTask, owner: str, *, lease: float,
                                  now: float) -> bool:
        """Keep a running action's lease alive; False if the lease was lost."""
        ...

    async def hand_off_action(self, task: ActionTask, owner: str, holder: str, *,
                              until: float) -> bool:
        """Lease a running action's task to ``holder`` (an async completion token's) until
        ``until``, if ``owner`` holds it; whether it did."""
        ...

    async def complete_action_task(self, task: ActionTask, event: Event, *, now: float) -> bool:
        """Record an action's outcome (first completion wins) and drop its task, atomically.

        Returns False and records nothing when the outcome was recorded before, or the
        execution has ended or moved on to another run than the task's (continue-as-new).
        """
        ...

    async def retry_action_task(self, task: ActionTask, owner: str, *, visible_at: float,
                                error: str, now: float) -> None:
        """Schedule the next attempt of a failed action at ``visible_at``."""
        ...

    async def claim_refs(self, refs: Sequence[TaskRef], owner: str, *, workflows: Collection[str],
                         actions: Collection[str], lease: float, now: float,
                         history_after: Callable[[str, str], int] | None = None,
                         ) -> tuple[list[WorkflowTask], list[ActionTask]]:
        """Lease the tasks these hints name, if they are claimable now and their names are in
        ``workflows`` / ``actions``; hints for finished, leased or unknown tasks are skipped.

        ``history_after(tenant, workflow_id)`` is the seq up to which the caller already holds
        an execution's history; a store may then return the rest with the claimed task
        (``WorkflowTask.history``), saving a read."""
        ...

    async def run_action_transaction(self, task: ActionTask, body: Callable[[Any], Any], *,
                                     isolation: str, now: float) -> bool:
        """A database action's attempt: run ``body(connection)`` in a transaction at
        ``isolation`` that also records the action's completion (``ActionCompleted`` with
        what ``body`` returned), and commit both, or neither when ``body`` raises (it
        propagates). ``body`` is a coroutine function on ``asyncpg``, a plain function
        (run on the store's thread) on ``sqlite3``.

        Returns True when the completion was recorded in the history (and the workflow made
        runnable); False when another attempt had recorded it (this one's writes are rolled
        back), when the execution ended, or when the outcome is committed but not yet in the
        history (whoever takes the task over next moves it there, without running ``body``).
        A store without transactions raises ``DatabaseActionError``.
        """
        ...


class TimerStore(Protocol):
    """Timers and the outbox: what makes waiting work runnable, and what announces it again."""

    async def fire_due_timers(self, *, now: float, limit: int) -> list[TaskRef]:
        """Record ``TimerFired`` for up to ``limit`` due timers (each exactly once).

        Timers are due on the store's clock (``_store_clock``), not on the caller's. Each
        ``TimerFired``, and the workflow task it makes runnable, is stamped with the earlier
        of ``now`` and the store's time: a caller whose clock runs ahead must not make the
        task invisible to workers whose clocks do not. Returns the workflow-task hints of the
        executions whose timers fired.
        """
        ...

    async def dispatch_due(self, *, now: float, older_than: float, limit: int) -> list[TaskRef]:
        """The outbox: hints for up to ``limit`` claimable tasks last dispatched more than
        ``older_than`` seconds ago (a lost hint, a dead worker's expired lease, a retry or a
        release that became due). They are marked as ``_backlog.announced_mark`` says (the
        longer a task has waited, the later it is announced again); concurrent callers get
        disjoint sets.

        A task counts as dispatched when it is created or made runnable (its creator publishes
        the hint); retries and releases reset that, so they are dispatched once due.
        """
        ...

    async def backlog(self, *, now: float) -> Backlog:
        """The tasks ready at ``now`` that no worker holds (by kind and route) and the timers
        due on the store's clock, not fired yet: a snapshot for metrics, not a claim."""
        ...

    async def refresh_statistics(self) -> list[str]:
        """Let the store's query planner see the task queues as they are now; the tables it
        looked at again (none where the planner needs no statistics: memory, SQLite).

        PostgreSQL keeps a statement's plan from when a table held a few rows: a queue that
        grows to thousands is then read whole by every claim and outbox pass until the table
        is analyzed (autovacuum may take a minute, and never comes where it is off). Each
        queue table whose live rows grew past four times what the planner last counted (and
        by 1,000 at least) is analyzed, which makes every session plan its statements again.
        """
        ...

    async def rebuild_bloated_indexes(self) -> list[str]:
        """Rebuild the indexes of a queue table (tasks, timers) that are mostly empty pages; the
        tables whose indexes were rebuilt (none for memory and SQLite).

        Every plain step inserts an action task and deletes it; on PostgreSQL a B-tree page is
        reused only once VACUUM found it empty, so a busy queue's indexes grow to thousands of
        pages for a hundred rows, and the planner, which prices an index by its pages, then
        reads all of a tenant's tasks through another index for each look-up by key. PostgreSQL
        rebuilds such a table's indexes with ``REINDEX TABLE CONCURRENTLY`` (writes go on; one
        caller at a time; an index a rebuild left half made is dropped first). Slow when a
        long transaction is open: ``durable server`` calls it from its retention loop.
        """
        ...

    async def next_wakeup(self, *, now: float) -> float | None:
        """The earliest time a timer, a delayed task or a schedule becomes due (None if nothing
        waits), on the caller's clock: a timer's is ``now`` plus its time left on the store's
        clock."""
        ...

    async def next_timer(self, *, now: float) -> float | None:
        """When the earliest timer fires (None if none waits), on the caller's clock: ``now``
        plus its time left on the store's. Unlike ``next_wakeup`` it reads the timers alone
        (by their index): ``durable server``'s timers loop asks it between passes, and a
        scan of every task grows with the backlog."""
        ...


class RequestStore(Protocol):
    """Requests: queries and updates for an execution, and their answers."""

    async def submit_request(self, request: Request, *, now: float) -> tuple[Request | None, bool]:
        """Record a query or update (unless one with its ``id`` exists) and make the execution
        runnable with ``requested`` set, so that a worker answers it.

        Returns the stored request (the existing one for a known ``id``, except that a
        rejected update is replaced by this new attempt) and whether a workflow task was made
        runnable (then the caller publishes its hint). A new update for an execution that has
        ended is not recorded: (None, False). Raises ``WorkflowNotFoundError`` when there is
        no such execution.
        """
        ...

    async def get_request(self, tenant: str, workflow_id: str, request_id: str) -> Request | None:
        """The request, or None."""
        ...

    async def rearm_request(self, tenant: str, workflow_id: str, request_id: str, *,
                            now: float) -> bool:
        """If the request is still pending and the execution has no workflow task (a worker
        committed one that started before the request arrived), make one, ``requested``,
        runnable now; return whether it did."""
        ...

    async def pending_requests(self, tenant: str, workflow_id: str) -> list[Request]:
        """The execution's requests no worker has answered or accepted, oldest first."""
        ...

    async def answer_requests(self, tenant: str, workflow_id: str, replies: Sequence[Reply], *,
                              now: float) -> None:
        """Record ``replies``; requests that are already answered are left as they are."""
        ...

    async def forget_request(self, tenant: str, workflow_id: str, request_id: str) -> None:
        """Delete the request (its caller has read the answer, or stopped waiting)."""
        ...


class ScheduleStore(Protocol):
    """Schedules (see ``_schedule_records``): their definitions and the scheduler's leases."""

    async def create_schedule(self, record: ScheduleRecord, *,
                              next_check: float | None) -> tuple[ScheduleRecord, bool]:
        """Insert ``record`` (at its ``revision``), due for a scheduler at ``next_check``.

        If the tenant already has a schedule with that id, return it and False.
        """
        ...

    async def get_schedule(self, tenant: str, schedule_id: str) -> ScheduleRecord | None:
        """The schedule, or None."""
        ...

    async def list_schedules(self, tenant: str | None = None, *,
                             limit: int = 100) -> list[ScheduleRecord]:
        """Schedules ordered by tenant and id; all tenants when ``tenant`` is None."""
        ...

    async def update_schedule(self, record: ScheduleRecord, *, next_check: float | None,
                              owner: str | None = None, release: bool = True) -> bool:
        """Replace the schedule if its stored revision is ``record.revision - 1``.

        With ``owner``, only while ``owner`` holds its lease, which the update releases
        (unless ``release`` is False). Returns False and changes nothing otherwise (or when
        there is no such schedule).
        """
        ...

    async def delete_schedule(self, tenant: str, schedule_id: str) -> bool:
        """Delete the schedule; False if there was none."""
        ...

    async def claim_schedules(self, owner: str, *, lease: float, now: float, limit: int,
                              key: tuple[str, str] | None = None) -> list[ScheduleRecord]:
        """Lease up to ``limit`` schedules whose ``next_check`` is due and that no live lease
        holds (only the one ``key`` names, when given). Concurrent callers get disjoint sets."""
        ...

    async def next_schedule_check(self) -> float | None:
        """The earliest time a schedule needs a scheduler (None if none does)."""
        ...


class SnapshotStore(Protocol):
    """Snapshots: what replaying a run up to a point gave, so time travel starts there."""

    async def save_snapshot(self, snapshot: Snapshot, *, keep: int) -> None:
        """Keep ``snapshot`` (replacing one of its run at the same seq) and drop all but the
        ``keep`` newest snapshots of its run."""
        ...

    async def find_snapshot(self, tenant: str, workflow_id: str, run_id: str, *,
                            seq: int | None = None, time: float | None = None) -> Snapshot | None:
        """The run's newest snapshot at or before ``seq`` and ``time`` (None: no bound)."""
        ...


class HostStore(Protocol):
    """What live workers host: each worker's routes (``_queues``: a workflow's or action's name
    on its queue), so that a task no live worker can run is reported, not only left waiting."""

    async def register_hosts(self, worker: str, hosts: Collection[tuple[str, str]], *,
                             now: float) -> None:
        """Record that ``worker`` hosts ``hosts``, (kind, route) pairs (kind ``"w"`` for a
        workflow, ``"a"`` for an action), as of ``now``; what it registered before is replaced."""
        ...

    async def unregister_hosts(self, worker: str) -> None:
        """Forget what ``worker`` hosts (it stopped)."""
        ...

    async def unhosted(self, hosts: Collection[tuple[str, str]], *,
                       since: float) -> set[tuple[str, str]]:
        """The (kind, route) pairs of ``hosts`` that no worker registered since ``since`` hosts."""
        ...


class Store(ExecutionStore, TaskStore, TimerStore, RequestStore, ScheduleStore, SnapshotStore,
            WorkerStore, HeartbeatStore, HostStore, RetentionStore, Protocol):
    """Where executions, histories and work live: every role. Chosen by URL with
    ``open_store``."""

    url: str
    wakeup: Wakeup

    async def close(self) -> None:
        """Release connections and files."""
        ...
