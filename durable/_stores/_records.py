"""The records a store trades in: executions, tasks, requests, snapshots and commits.

All are frozen msgspec structs (or named tuples): what a store returns is a value, never a
view of its rows. ``WorkflowCommit`` is everything one workflow task writes, the one argument
of ``TaskStore.commit_workflow_task``.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple, Sequence

import msgspec

from .._history import ErrorInfo, Event, WorkflowStarted
from .._options import CallOptions
from .._queues import route
from ..errors import HistoryError

__all__ = [
    "FINISHED_REQUESTS",
    "TERMINAL_STATUSES",
    "ActionTask",
    "ExecutionRecord",
    "ExecutionUpdate",
    "Outcome",
    "Reply",
    "Request",
    "RequestStatus",
    "RunCheck",
    "Settled",
    "Signal",
    "Snapshot",
    "Start",
    "Status",
    "TaskRef",
    "TimerRecord",
    "WorkflowCommit",
    "WorkflowTask",
    "action_dedup",
    "action_ref",
    "workflow_ref",
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
    queue: str = "default"  # the queue its workflow tasks are on (``_queues``)
    priority: int = 0  # its tasks' priority (higher first)
    fairness_key: str | None = None  # its tasks take turns with other keys' (None: no key)


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
    queue: str = "default"


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
    queue: str = "default"
    options: CallOptions | None = None  # what the call overrides of the action's declaration
    priority: int = 0  # the call's, or its workflow's (higher first)
    fairness_key: str | None = None  # its workflow's

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


class Settled(msgspec.Struct, frozen=True):
    """An action's outcome that a commit records before its own events (``event``, at seq
    ``expected_seq - 1``): the workflow task that ran it was never a row of its own.

    The commit applies only while the history ends just before ``event``, in the action's run,
    no workflow task of the execution is pending (an input or a request waits for one) and the
    commit's owner holds the action's lease; the action's task goes, and ``event`` is recorded
    with the action's dedup key (first completion wins, as ``complete_action_task``).
    """

    task: ActionTask
    event: Event


class WorkflowCommit(msgspec.Struct, frozen=True):
    """What one workflow task writes, in one transaction (``TaskStore.commit_workflow_task``).

    ``events`` continue the history of the execution's current run: the first has
    ``seq == expected_seq`` (invariant: ``seq`` is dense, so the commit applies only while the
    history ends at ``expected_seq - 1``), and ``owner`` must hold the task's lease. Besides
    the events, the commit writes the work they create (``actions``, ``timers``), drops the
    work they cancel (``cancelled_timers``, ``cancelled_actions``: numbered by command),
    changes the execution row (``update``), creates executions or the next run (``starts``),
    appends inputs to other executions (``signals``) and answers requests (``replies``), all
    at time ``now``. The new actions numbered in ``leased`` are created leased to ``owner``
    until ``lease_until`` (eager dispatch: the committing worker runs them at once, as claimed
    tasks); the others are created for any worker to claim. With ``settled``, the commit first
    records an action's outcome that made the task due (see ``Settled``): then ``owner``
    holds no task, only the action's lease.
    """

    owner: str
    expected_seq: int
    events: list[Event]
    update: ExecutionUpdate
    now: float
    actions: Sequence[ActionTask] = ()
    timers: Sequence[TimerRecord] = ()
    cancelled_timers: Sequence[int] = ()
    cancelled_actions: Sequence[int] = ()
    starts: Sequence[Start] = ()
    signals: Sequence[Signal] = ()
    replies: Sequence[Reply] = ()
    leased: Sequence[int] = ()
    lease_until: float = 0.0
    settled: Settled | None = None


class RunCheck(NamedTuple):
    """What checking every row of one run of an execution found (``durable verify``): its
    events, how many of them have no checksum (written before checksums existed: checked for
    their seq and decoding only), and the first damage (None: intact)."""

    tenant: str
    workflow_id: str
    run_id: str
    events: int
    unchecked: int
    error: HistoryError | None


class TaskRef(msgspec.Struct, frozen=True, array_like=True):
    """A hint that a task may be runnable: what a dispatcher carries. Never the truth.

    ``kind`` is ``"w"`` for a workflow task (the execution has inputs to run) or ``"a"`` for an
    action task (then ``name``, ``run_id`` and ``cmd`` name it). ``name`` is a route (the name
    on its queue, ``_queues.route``); a workflow hint's is empty when its publisher does not
    know it.
    """

    kind: Literal["w", "a"]
    tenant: str
    workflow_id: str
    name: str = ""
    run_id: str = ""
    cmd: int = -1


def workflow_ref(tenant: str, workflow_id: str, name: str = "") -> TaskRef:
    """The hint for an execution's workflow task; ``name`` is its workflow's route (see
    ``_queues``) when the caller knows it, so that it reaches a worker that hosts it."""
    return TaskRef("w", tenant, workflow_id, name)


def action_dedup(task: ActionTask) -> str:
    """The dedup key of an action's outcome in its run's history (first completion wins)."""
    return f"a{task.run_id}/{task.cmd}"


def action_ref(task: ActionTask) -> TaskRef:
    """The hint for an action task (its ``name`` is the action's route)."""
    return TaskRef("a", task.tenant, task.workflow_id, route(task.name, task.queue), task.run_id,
                   task.cmd)
