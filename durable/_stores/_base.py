"""The ``Store`` protocol and the records it trades in.

A store keeps, per tenant: executions (one row per workflow id, pointing at its current run),
their append-only histories, three kinds of work: workflow tasks (an execution has inputs
to run), action tasks (an action to run) and timers (a durable timer to fire), and requests
(queries and updates waiting for the workflow's worker to answer them).

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
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from typing import (
    Any, Awaitable, Callable, ClassVar, Collection, Final, Iterator, Literal, NamedTuple,
    Protocol, Sequence,
)

import msgspec

from .._history import ErrorInfo, Event, WorkflowStarted
from ._schedule_records import ScheduleRecord

__all__ = [
    "ActionTask",
    "ExecutionRecord",
    "ExecutionUpdate",
    "FINISHED_REQUESTS",
    "Outcome",
    "Reply",
    "Request",
    "Signal",
    "Snapshot",
    "Start",
    "Store",
    "TERMINAL_STATUSES",
    "TaskRef",
    "TimerRecord",
    "Wakeup",
    "WorkflowTask",
]

Status = Literal["running", "completed", "failed", "cancelled"]
TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})
RequestStatus = Literal["pending", "accepted", "ok", "failed", "rejected"]
FINISHED_REQUESTS = frozenset({"ok", "failed", "rejected"})


class ExecutionRecord(msgspec.Struct, frozen=True):
    """One execution as the store sees it (what ``describe()`` and ``durable list`` show)."""

    tenant: str
    workflow_id: str
    run_id: str
    workflow: str
    version: str
    status: Status
    created_at: float
    updated_at: float
    last_seq: int
    state: str | None = None
    data: dict[str, Any] = {}
    result: Any = None
    error: ErrorInfo | None = None
    task_error: str | None = None  # why the last workflow task could not run (non-determinism)


class ExecutionUpdate(msgspec.Struct, frozen=True):
    """What a workflow task changes on the execution row besides its history."""

    status: Status
    state: str | None
    data: dict[str, Any]
    result: Any = None
    error: ErrorInfo | None = None


class Outcome(NamedTuple):
    """How an execution ended, as its end notification carries it (so a result waiter needs
    no read): ``result`` and ``error`` as the execution record holds them."""

    workflow: str
    status: str
    result: Any = None
    error: ErrorInfo | None = None

    @classmethod
    def of(cls, workflow: str, update: ExecutionUpdate) -> Outcome:
        """The outcome a terminal ``update`` records."""
        return cls(workflow, update.status, update.result, update.error)


class WorkflowTask(msgspec.Struct, frozen=True):
    """A claimed workflow task: the execution has inputs to run (or, when ``requested``,
    queries or updates may be waiting for it: see ``Store.pending_requests``).

    A claim may bring the history along (``Store.claim_refs(history_after=...)``): then
    ``history`` holds the events of run ``run_id`` (the current one) after ``after_seq``, as
    of the claim.
    """

    tenant: str
    workflow_id: str
    workflow: str
    attempt: int = 1
    history: list[Event] | None = None
    after_seq: int = 0
    run_id: str = ""
    requested: bool = False


class Request(msgspec.Struct, frozen=True):
    """A query or an update for one execution, and its answer once it has one.

    ``status``: ``pending`` (no worker has seen it), ``accepted`` (an update recorded in
    history, its handler running), then one of ``ok`` (``result`` is the answer),
    ``failed`` (the handler raised: ``error``) or ``rejected`` (an update refused before
    anything was recorded: ``error``).
    """

    tenant: str
    workflow_id: str
    id: str
    kind: Literal["query", "update"]
    name: str
    args: list[Any]
    created_at: float
    status: RequestStatus = "pending"
    result: Any = None
    error: ErrorInfo | None = None


class Snapshot(msgspec.Struct, frozen=True):
    """What replaying a run up to ``seq`` (the last event of a workflow task) gives: its
    status, state, data and the ``file:line`` its coroutine was suspended at. Time travel
    starts from one instead of from the first event; a worker's replay never reads one."""

    tenant: str
    workflow_id: str
    run_id: str
    seq: int
    time: float  # the time of the event at ``seq``
    status: Status
    state: str | None
    data: dict[str, Any]
    suspended_at: str | None


class Reply(msgspec.Struct, frozen=True):
    """What a worker answers to request ``id`` (a new ``status`` with its result or error)."""

    id: str
    status: RequestStatus
    result: Any = None
    error: ErrorInfo | None = None


class ActionTask(msgspec.Struct, frozen=True):
    """An action to run (or a claimed one). ``attempt`` counts from 1."""

    tenant: str
    workflow_id: str
    run_id: str
    cmd: int
    name: str
    args: list[Any]
    kwargs: dict[str, Any]
    attempt: int = 1
    visible_at: float = 0.0
    last_error: str | None = None

    @property
    def idempotency_key(self) -> str:
        """The same for every attempt of this call, different for every other call."""
        return f"{self.tenant}/{self.workflow_id}/{self.run_id}/{self.cmd}"


class TimerRecord(msgspec.Struct, frozen=True):
    """A durable timer that has not fired."""

    tenant: str
    workflow_id: str
    run_id: str
    cmd: int
    fire_at: float


class Start(msgspec.Struct, frozen=True):
    """An execution (or the next run of the committing one) that a commit creates.

    ``started`` is the new run's ``WorkflowStarted`` (the store sets its seq and time). When it
    names another execution, ``on_started`` (if it was created) or ``on_exists`` (if an
    execution with that workflow id exists already) is appended to the committing execution
    as an input, so that the workflow learns which.
    """

    started: WorkflowStarted
    on_started: Event | None = None
    on_exists: Event | None = None


class Signal(msgspec.Struct, frozen=True):
    """An input that a commit appends to the current run of another execution.

    It is skipped when that execution does not exist, has ended, has seen ``dedup`` in its
    current run, or (when ``run_id`` is given) has moved on to another run.
    """

    tenant: str
    workflow_id: str
    event: Event
    dedup: str | None = None
    run_id: str | None = None


class TaskRef(msgspec.Struct, frozen=True, array_like=True):
    """A hint that a task may be runnable: what a dispatcher carries. Never the truth.

    ``kind`` is ``"w"`` for a workflow task (the execution has inputs to run) or ``"a"`` for an
    action task (then ``name``, ``run_id`` and ``cmd`` name it).
    """

    kind: Literal["w", "a"]
    tenant: str
    workflow_id: str
    name: str = ""
    run_id: str = ""
    cmd: int = -1


def workflow_ref(tenant: str, workflow_id: str) -> TaskRef:
    """The hint for an execution's workflow task."""
    return TaskRef("w", tenant, workflow_id)


def action_ref(task: ActionTask) -> TaskRef:
    """The hint for an action task."""
    return TaskRef("a", task.tenant, task.workflow_id, task.name, task.run_id, task.cmd)


class Store(Protocol):
    """Where executions, histories and work live. Chosen by URL with ``open_store``."""

    url: str
    wakeup: Wakeup
    # The driver whose connection a database action receives ("asyncpg", "sqlite3"), or None
    # when the store has no transactions (memory).
    transaction_driver: ClassVar[str | None]

    async def create_execution(self, started: Event, *, now: float,
                               lease_to: tuple[str, float] | None = None,
                               ) -> tuple[ExecutionRecord, bool]:
        """Create an execution from its ``WorkflowStarted`` event (seq 1) and a workflow task.

        If the tenant already has an execution with that workflow id, return it and False.
        With ``lease_to=(owner, lease_until)`` the workflow task is created already leased to
        ``owner`` (its first claim: eager start, the caller runs it at once).
        """

    async def get_execution(self, tenant: str, workflow_id: str) -> ExecutionRecord | None:
        """The execution, or None."""

    async def list_executions(self, tenant: str | None = None, *, status: str | None = None,
                              limit: int = 100) -> list[ExecutionRecord]:
        """Executions, newest first; all tenants when ``tenant`` is None."""

    async def scan_executions(self, tenant: str | None = None, *, workflow: str | None = None,
                              status: str | None = None, since: float | None = None,
                              after: ExecutionRecord | None = None,
                              limit: int = 500) -> list[ExecutionRecord]:
        """Up to ``limit`` executions, oldest first (by ``created_at``, tenant, workflow id).

        Filters: tenant (all when None), workflow name, status, created at or after
        ``since``. Paging: ``after`` is the last record of the previous page.
        """

    async def read_history(self, tenant: str, workflow_id: str, *, run_id: str | None = None,
                           after_seq: int = 0, limit: int | None = None) -> list[Event]:
        """Events with ``seq > after_seq`` of the run (default: the current one), in order;
        at most ``limit`` of them (None: all)."""

    async def append_input(self, tenant: str, workflow_id: str, event: Event, *,
                           dedup: str | None = None, now: float) -> int | None:
        """Append an input at the next ``seq`` and make the execution runnable.

        Returns the new ``seq``; None when the execution has ended or ``dedup`` was seen before.
        Raises ``WorkflowNotFoundError`` when there is no such execution.
        """

    async def commit_workflow_task(self, task: WorkflowTask, owner: str, expected_seq: int,
                                   events: list[Event], *, actions: list[ActionTask],
                                   timers: list[TimerRecord], cancelled_timers: list[int],
                                   update: ExecutionUpdate, now: float,
                                   cancelled_actions: Sequence[int] = (),
                                   starts: Sequence[Start] = (),
                                   signals: Sequence[Signal] = (),
                                   replies: Sequence[Reply] = ()) -> bool:
        """Append ``events`` (the first has ``seq == expected_seq``) with their effects, atomically.

        Returns False and changes nothing when the history no longer ends at
        ``expected_seq - 1`` or ``owner`` does not hold the task. On success the workflow task
        is done; a terminal ``update`` also drops the execution's remaining action tasks and
        timers. In the same transaction, after the update:

        * the run's action tasks numbered in ``cancelled_actions`` are dropped (an attempt
          that is running finds its lease gone at its next heartbeat);
        * each of ``starts``, in order, is created: one that names the committing execution
          is its next run (continue-as-new: the current run's remaining action tasks and
          timers are dropped, the execution switches to the new run with its ``created_at``
          kept and nothing else carried over, and a workflow task is made runnable); any
          other is a new execution, as with :meth:`create_execution`, unless its workflow
          id is taken (see ``Start`` for what the committer is told);
        * each of ``signals``, in order, is appended (see ``Signal``), after the starts;
        * ``replies`` answer the execution's requests (as ``answer_requests`` does).

        The workflow tasks this makes runnable count as dispatched: the committer publishes
        their hints.
        """

    async def finish_workflow_task(self, task: WorkflowTask, owner: str, expected_seq: int, *,
                                   replies: Sequence[Reply], now: float) -> bool:
        """Finish a workflow task that recorded nothing (it answered requests): drop the task
        and write ``replies``, atomically, leaving the execution as it is.

        Returns False and changes nothing when ``owner`` does not hold the task or the history
        no longer ends at ``expected_seq - 1`` (an input arrived: run the task again).
        """

    async def claim_workflow_tasks(self, workflows: Collection[str], owner: str, *,
                                   lease: float, now: float, limit: int) -> list[WorkflowTask]:
        """Lease up to ``limit`` runnable workflow tasks of the named workflows."""

    async def release_workflow_task(self, task: WorkflowTask, owner: str, *, delay: float,
                                    error: str | None, now: float) -> None:
        """Give a leased workflow task back, to be retried after ``delay`` seconds."""

    async def claim_action_tasks(self, actions: Collection[str], owner: str, *, lease: float,
                                 now: float, limit: int) -> list[ActionTask]:
        """Lease up to ``limit`` due action tasks of the named actions."""

    async def extend_action_lease(self, task: ActionTask, owner: str, *, lease: float,
                                  now: float) -> bool:
        """Keep a running action's lease alive; False if the lease was lost."""

    async def complete_action_task(self, task: ActionTask, event: Event, *, now: float) -> bool:
        """Record an action's outcome (first completion wins) and drop its task, atomically.

        Returns False and records nothing when the outcome was recorded before, or the
        execution has ended or moved on to another run than the task's (continue-as-new).
        """

    async def retry_action_task(self, task: ActionTask, owner: str, *, visible_at: float,
                                error: str, now: float) -> None:
        """Schedule the next attempt of a failed action at ``visible_at``."""

    async def fire_due_timers(self, *, now: float, limit: int) -> list[TaskRef]:
        """Record ``TimerFired`` for up to ``limit`` due timers (each exactly once).

        Returns the workflow-task hints of the executions whose timers fired.
        """

    async def claim_refs(self, refs: Sequence[TaskRef], owner: str, *, workflows: Collection[str],
                         actions: Collection[str], lease: float, now: float,
                         history_after: Callable[[str, str], int] | None = None,
                         ) -> tuple[list[WorkflowTask], list[ActionTask]]:
        """Lease the tasks these hints name, if they are claimable now and their names are in
        ``workflows`` / ``actions``; hints for finished, leased or unknown tasks are skipped.

        ``history_after(tenant, workflow_id)`` is the seq up to which the caller already holds
        an execution's history; a store may then return the rest with the claimed task
        (``WorkflowTask.history``), saving a read."""

    async def dispatch_due(self, *, now: float, older_than: float, limit: int) -> list[TaskRef]:
        """The outbox: hints for up to ``limit`` claimable tasks last dispatched more than
        ``older_than`` seconds ago (a lost hint, a dead worker's expired lease, a retry or a
        release that became due). They are marked dispatched at ``now``; concurrent callers
        get disjoint sets.

        A task counts as dispatched when it is created or made runnable (its creator publishes
        the hint); retries and releases reset that, so they are dispatched once due.
        """

    async def submit_request(self, request: Request, *, now: float) -> tuple[Request | None, bool]:
        """Record a query or update (unless one with its ``id`` exists) and make the execution
        runnable with ``requested`` set, so that a worker answers it.

        Returns the stored request (the existing one for a known ``id``, except that a
        rejected update is replaced by this new attempt) and whether a workflow task was made
        runnable (then the caller publishes its hint). A new update for an execution that has
        ended is not recorded: (None, False). Raises ``WorkflowNotFoundError`` when there is
        no such execution.
        """

    async def get_request(self, tenant: str, workflow_id: str, request_id: str) -> Request | None:
        """The request, or None."""

    async def rearm_request(self, tenant: str, workflow_id: str, request_id: str, *,
                            now: float) -> bool:
        """If the request is still pending and the execution has no workflow task (a worker
        committed one that started before the request arrived), make one, ``requested``,
        runnable now; return whether it did."""

    async def pending_requests(self, tenant: str, workflow_id: str) -> list[Request]:
        """The execution's requests no worker has answered or accepted, oldest first."""

    async def answer_requests(self, tenant: str, workflow_id: str, replies: Sequence[Reply], *,
                              now: float) -> None:
        """Record ``replies``; requests that are already answered are left as they are."""

    async def forget_request(self, tenant: str, workflow_id: str, request_id: str) -> None:
        """Delete the request (its caller has read the answer, or stopped waiting)."""

    async def save_snapshot(self, snapshot: Snapshot, *, keep: int) -> None:
        """Keep ``snapshot`` (replacing one of its run at the same seq) and drop all but the
        ``keep`` newest snapshots of its run."""

    async def find_snapshot(self, tenant: str, workflow_id: str, run_id: str, *,
                            seq: int | None = None, time: float | None = None) -> Snapshot | None:
        """The run's newest snapshot at or before ``seq`` and ``time`` (None: no bound)."""

    async def pending_work(self, tenant: str, workflow_id: str) -> tuple[list[ActionTask], list[TimerRecord]]:
        """The execution's action tasks and timers that have not finished."""

    async def next_wakeup(self, *, now: float) -> float | None:
        """The earliest time a timer, a delayed task or a schedule becomes due (None if nothing
        waits)."""

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

    # ---- schedules (see ``_schedule_records``) -------------------------------------------

    async def create_schedule(self, record: ScheduleRecord, *,
                              next_check: float | None) -> tuple[ScheduleRecord, bool]:
        """Insert ``record`` (at its ``revision``), due for a scheduler at ``next_check``.

        If the tenant already has a schedule with that id, return it and False.
        """

    async def get_schedule(self, tenant: str, schedule_id: str) -> ScheduleRecord | None:
        """The schedule, or None."""

    async def list_schedules(self, tenant: str | None = None, *,
                             limit: int = 100) -> list[ScheduleRecord]:
        """Schedules ordered by tenant and id; all tenants when ``tenant`` is None."""

    async def update_schedule(self, record: ScheduleRecord, *, next_check: float | None,
                              owner: str | None = None, release: bool = True) -> bool:
        """Replace the schedule if its stored revision is ``record.revision - 1``.

        With ``owner``, only while ``owner`` holds its lease, which the update releases
        (unless ``release`` is False). Returns False and changes nothing otherwise (or when
        there is no such schedule).
        """

    async def delete_schedule(self, tenant: str, schedule_id: str) -> bool:
        """Delete the schedule; False if there was none."""

    async def claim_schedules(self, owner: str, *, lease: float, now: float, limit: int,
                              key: tuple[str, str] | None = None) -> list[ScheduleRecord]:
        """Lease up to ``limit`` schedules whose ``next_check`` is due and that no live lease
        holds (only the one ``key`` names, when given). Concurrent callers get disjoint sets."""

    async def next_schedule_check(self) -> float | None:
        """The earliest time a schedule needs a scheduler (None if none does)."""

    async def close(self) -> None:
        """Release connections and files."""


_RECENT_ENDS: Final = 10_000  # ends remembered, for result waiters that come late
_FIRST_POLL, _LAST_POLL = 0.002, 0.05  # seconds between looks at other processes' changes


class Wakeup:
    """In-process wake-ups: pollers wait for new work, result waiters for one execution's end.

    Stores call :meth:`notify` when they made work runnable, :meth:`ended` when an execution
    reached a terminal status and :meth:`replied` when a request got its answer (the
    PostgreSQL store also relays other processes' ``ended`` and ``replied`` through
    ``LISTEN``); other processes are found by polling. All of it happens on the event loop's
    thread (stores call these after their I/O returns), so waiters are woken directly.

    ``epoch`` is not None while every end is reported here (a memory store always; the
    PostgreSQL store while its ``LISTEN`` connection is up, with a new epoch after each
    reconnect): an execution created during one epoch cannot end unnoticed while it lasts,
    so its creator may wait for the notice without reading first.
    """

    def __init__(self, *, reliable: bool = False,
                 changes: Callable[[], Awaitable[int]] | None = None) -> None:
        self._changes = changes
        self._watch: asyncio.Task[None] | None = None
        self._waiters: set[asyncio.Future[None]] = set()
        self._watchers: dict[tuple[str, str], set[asyncio.Future[Outcome | None]]] = {}
        self._reply_watchers: dict[tuple[str, str, str], set[asyncio.Future[None]]] = {}
        self._recent: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._epochs = 0
        self.epoch: int | None = 0 if reliable else None
        self.generation = 0  # counts notifications, so a waiter misses none

    def connected(self) -> None:
        """Every end is reported from now on (a new epoch begins)."""
        self._epochs += 1
        self.epoch = self._epochs

    def disconnected(self) -> None:
        """Ends may go unreported (the epoch is over)."""
        self.epoch = None

    def ended_recently(self, tenant: str, workflow_id: str) -> bool:
        """Whether :meth:`ended` was called for the execution lately."""
        return (tenant, workflow_id) in self._recent

    def notify(self) -> None:
        """Wake every poller waiting now."""
        self.generation += 1
        for fut in self._waiters:
            if not fut.done():
                fut.set_result(None)
        self._waiters.clear()

    async def wait(self, timeout: float, seen: int | None = None) -> None:
        """Return after a ``notify()`` or ``timeout`` seconds, whichever comes first.

        With ``seen`` (an earlier ``generation``), return at once if a notification came since.
        """
        if seen is not None and seen != self.generation:
            return
        fut = asyncio.get_running_loop().create_future()
        self._waiters.add(fut)
        self._watch_changes()
        try:
            # Not asyncio.wait_for: on Python 3.11 it swallows a cancellation that arrives as
            # the future completes (CPython gh-86296), and the cancelled poller polls on.
            await asyncio.wait((fut,), timeout=timeout)
        finally:
            self._waiters.discard(fut)

    def _watch_changes(self) -> None:
        """With ``changes`` (a counter other processes' commits move, such as SQLite's
        ``PRAGMA data_version``), poll it while anyone waits and :meth:`notify` when it moves:
        every 2 ms while things change, backing off to 50 ms when they do not."""
        if self._changes is not None and (self._watch is None or self._watch.done()):
            self._watch = asyncio.get_running_loop().create_task(self._watching(self._changes))

    async def _watching(self, changes: Callable[[], Awaitable[int]]) -> None:
        seen, delay = await changes(), _FIRST_POLL
        while self._waiters:
            await asyncio.sleep(delay)
            current = await changes()
            if current != seen:
                seen, delay = current, _FIRST_POLL
                self.notify()
            else:
                delay = min(delay * 2, _LAST_POLL)

    async def close(self) -> None:
        """Stop watching for other processes' changes."""
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)

    def ended(self, tenant: str, workflow_id: str, outcome: Outcome | None = None) -> None:
        """Wake whoever watches the execution, with its outcome when it is known."""
        key = (tenant, workflow_id)
        self._recent[key] = None
        self._recent.move_to_end(key)
        if len(self._recent) > _RECENT_ENDS:
            self._recent.popitem(last=False)
        for fut in self._watchers.get(key, ()):
            if not fut.done():
                fut.set_result(outcome)

    @contextlib.contextmanager
    def watching(self, tenant: str, workflow_id: str) -> Iterator[asyncio.Future[Outcome | None]]:
        """A future that :meth:`ended` resolves (to the outcome, or None when the notice did
        not carry it); watch *before* reading the status, so that an end that happens in
        between is not missed."""
        key = (tenant, workflow_id)
        fut: asyncio.Future[Outcome | None] = asyncio.get_running_loop().create_future()
        self._watchers.setdefault(key, set()).add(fut)
        try:
            yield fut
        finally:
            watchers = self._watchers.get(key)
            if watchers is not None:
                watchers.discard(fut)
                if not watchers:
                    del self._watchers[key]


    def replied(self, tenant: str, workflow_id: str, request_id: str) -> None:
        """Wake whoever waits for the answer to the request."""
        for fut in self._reply_watchers.get((tenant, workflow_id, request_id), ()):
            if not fut.done():
                fut.set_result(None)

    @contextlib.contextmanager
    def watching_reply(self, tenant: str, workflow_id: str,
                       request_id: str) -> Iterator[asyncio.Future[None]]:
        """A future that :meth:`replied` resolves (watch before reading the request)."""
        key = (tenant, workflow_id, request_id)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._reply_watchers.setdefault(key, set()).add(fut)
        try:
            yield fut
        finally:
            watchers = self._reply_watchers.get(key)
            if watchers is not None:
                watchers.discard(fut)
                if not watchers:
                    del self._reply_watchers[key]
