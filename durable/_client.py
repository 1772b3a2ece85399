"""``connect()``, ``Client`` and ``WorkflowHandle``: starting and talking to executions."""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Awaitable, Callable, Generic, TypeVar, TypeVarTuple, Unpack

import msgspec
from msgspec.structs import replace

from . import _completion
from ._clock import SYSTEM_CLOCK, Clock
from ._replay._context import Context
from ._definitions import Duration, WorkflowDefinition, workflow_definition
from ._lanes import enter
from ._scope import permit, permit_all, scope
from ._history import CancelRequested, ErrorInfo, EventReceived, WorkflowStarted
from ._history_list import History
from ._ports import EagerWorker
from ._starts import IdReuse, OnConflict, check_policies, start
from ._codecs import Codec, check_codec
from ._limits import queue_bucket
from ._payloads import (
    MAX_PAYLOAD_BYTES, check_metadata, check_payload_limit, check_size, dump_value, payload_limit,
)
from ._retention import Retention
from ._queues import HOSTS_TTL, check_queue, route, unhosted_reason, unroute
from ._validate import (
    check_count, check_id, check_number, check_optional_id, check_priority, check_text,
    check_timeout, show,
)
from ._schedules._handle import (
    DEFAULT_CATCHUP_WINDOW, ScheduleDescription, ScheduleHandle, create_schedule, describe,
)
from ._schedules._plan import Overlap
from ._telemetry._tracing import current_trace, traced
from ._dispatch import Dispatcher, LocalDispatcher
from ._queries import DEFAULT_TIMEOUT, UpdateHandle, call, start_update
from ._timetravel import StateAt, current_suspension, state_at
from ._stores import (
    TERMINAL_STATUSES, ActionTask, ExecutionRecord, Outcome, Store, TaskRef, TimerRecord,
    workflow_ref,
)
from .errors import (
    ArgumentTypeError, HistoryError, InvalidArgumentError, UnknownWorkflowError, ValidationError,
    WorkflowCancelledError,    WorkflowClosedError, WorkflowFailedError, WorkflowNotFoundError,
)

__all__ = ["Client", "Description", "WorkflowHandle"]

R = TypeVar("R")
Ts = TypeVarTuple("Ts")

_MAX_LIST = 100_000  # executions or schedules one list call returns at most
_STATUSES = ("running", *sorted(TERMINAL_STATUSES))
_FIRST_POLL = 0.002  # seconds: the first wait of a result that no notice will announce
_NOTICED_POLL = 5.0  # seconds between two reads of a result whose end will be announced

logger = logging.getLogger("durable.client")


class Description(msgspec.Struct, frozen=True):
    """A snapshot of an execution (``handle.describe()``)."""

    workflow_id: str
    run_id: str
    tenant: str
    workflow: str
    version: str
    status: str
    state: str | None
    data: dict[str, Any]
    created_at: float
    updated_at: float
    history_length: int
    pending_actions: list[ActionTask]
    pending_timers: list[TimerRecord]
    result: Any = None
    error: ErrorInfo | None = None
    task_error: str | None = None
    suspended_at: str | None = None  # file:line of the await a running workflow waits at
    queue: str = "default"  # the task queue its workflow tasks run on
    # Why its work waits, when it does: "no worker hosts action 'x' on queue 'y'", ...
    waiting: list[str] = []
    priority: int = 0  # its tasks' priority (``client.start(priority=)``)
    fairness_key: str | None = None  # ``client.start(fairness_key=)``, if any


class WorkflowHandle(Generic[R]):
    """A reference to one execution, by tenant and workflow id (a tenant the client may act
    for: ``TenantPermissionError`` otherwise)."""

    def __init__(self, client: Client, workflow_id: str, tenant: str,
                 definition: WorkflowDefinition | None = None) -> None:
        self.client = client
        self.workflow_id = workflow_id
        self._tenant = client.acts_for(tenant)
        self._definition = definition
        self._route = ""  # its workflow's route (``_queues``), once known: for its hints
        # The store's wakeup epoch in which this handle's start created the execution: until
        # it ends, the execution's end is reported, so a first wait needs no read.
        self._created_in: int | None = None

    def __repr__(self) -> str:
        return f"<WorkflowHandle {self.tenant}/{self.workflow_id}>"

    @property
    def tenant(self) -> str:
        """The execution's tenant (fixed: a handle acts for one tenant)."""
        return self._tenant

    async def _record(self) -> ExecutionRecord:
        record = await self.client.store.get_execution(self.tenant, self.workflow_id)
        if record is None:
            raise WorkflowNotFoundError(
                f"no execution {self.workflow_id!r} in tenant {self.tenant!r}",
                workflow_id=self.workflow_id, tenant=self.tenant)
        return record

    @traced("send")
    async def send(self, name: str, payload: Any = None, *, idempotency_key: str | None = None,
                   metadata: dict[str, Any] | None = None) -> None:
        """Deliver external event ``name`` to the execution (once per ``idempotency_key``).

        ``metadata`` (str keys, encodable values) is recorded with the event: who sent it, or
        why; the workflow reads it as ``event.metadata`` and ``durable show`` prints it.

        Raises ``WorkflowClosedError`` if the execution has ended (unless an event with the
        same ``idempotency_key`` was delivered before it did: then this is a retry, not an error).
        """
        check_id(name, "an event name", error=ArgumentTypeError)
        check_optional_id(idempotency_key, "an idempotency key", error=ArgumentTypeError)
        value = dump_value(payload, f"payload of event {name!r}")
        check_size(value, f"payload of event {name!r}", self.client.max_payload_bytes)
        meta = check_metadata(metadata, f"metadata of event {name!r}")
        event = EventReceived(0, 0.0, name, value, idempotency_key, meta)
        dedup = None if idempotency_key is None else f"e{idempotency_key}"
        seq = await self.client.store.append_input(self.tenant, self.workflow_id, event,
                                                   dedup=dedup, now=self.client.clock())
        if seq is not None:
            await self.client.publish([workflow_ref(self.tenant, self.workflow_id, self._route)])
        elif (await self._record()).status in TERMINAL_STATUSES and not (
                idempotency_key is not None and await self._delivered(idempotency_key)):
            raise WorkflowClosedError(f"execution {self.workflow_id!r} has ended; event "
                                      f"{name!r} was not delivered", workflow_id=self.workflow_id)

    async def _delivered(self, idempotency_key: str) -> bool:
        """Whether an event with this key is in the history (a retried send is no error)."""
        return any(isinstance(e, EventReceived) and e.key == idempotency_key
                   for e in await self.history())

    async def query(self, name: str, *args: Any, timeout: float | timedelta | None = DEFAULT_TIMEOUT,
                    result_type: Any = None) -> Any:
        """Ask the workflow's query handler ``name`` (``ctx.on_query``) for a value.

        The worker that runs the workflow answers from the live instance (its cache, or a
        replay; an ended execution answers from its final state); nothing is added to the
        history. ``result_type`` converts the answer (e.g. to a dataclass; by default, to the
        return type of a handler declared with ``durable.on_query`` on the handle's workflow).
        Raises
        ``UnknownQueryError`` when the workflow has no such handler, ``QueryFailedError``
        when it raised, and ``RequestTimeoutError`` when no worker answered within ``timeout``
        seconds (None waits for ever).
        """
        return await call(self, "query", name, args, key=None, timeout=timeout,
                          result_type=result_type)

    async def update(self, name: str, *args: Any, idempotency_key: str | None = None,
                     timeout: float | timedelta | None = DEFAULT_TIMEOUT,
                     result_type: Any = None) -> Any:
        """Deliver update ``name`` (``ctx.on_update``) and return what its handler returns.

        The update's validator runs against the live workflow first: if it raises, the call
        raises ``UpdateRejectedError`` (``UnknownUpdateError`` when there is no handler) and
        nothing is recorded. Otherwise the update is recorded and its handler runs in the
        workflow, exactly once per ``idempotency_key``: a call with a key that was accepted
        before returns that update's outcome instead of running it again. Raises
        ``UpdateFailedError`` when the handler raised, ``WorkflowClosedError`` when the
        execution has ended, ``RequestTimeoutError`` after ``timeout`` seconds (None waits
        for ever).
        """
        return await call(self, "update", name, args, key=idempotency_key, timeout=timeout,
                          result_type=result_type)

    async def start_update(self, name: str, *args: Any, wait_for: str = "accepted",
                           idempotency_key: str | None = None,
                           timeout: float | timedelta | None = DEFAULT_TIMEOUT,
                           result_type: Any = None) -> UpdateHandle:
        """Deliver update ``name`` and return an ``UpdateHandle`` once the workflow accepted
        it (``wait_for="accepted"``: its validator passed and it is recorded) or once its
        handler finished (``"completed"``); ``await update.result()`` gives what the handler
        returned. A rejected update raises here, as ``update`` does; ``RequestTimeoutError``
        when no worker took it within ``timeout`` seconds."""
        return await start_update(self, name, args, key=idempotency_key, wait_for=wait_for,
                                  timeout=timeout, result_type=result_type)

    async def cancel(self, reason: str = "") -> None:
        """Ask the workflow to stop: ``asyncio.CancelledError`` is raised at its current await.

        The workflow may clean up (even await actions and timers) and is then recorded as
        cancelled, unless it catches the error and returns. Its pending timers are cancelled,
        and the actions it was waiting for are told (``durable.action_info().cancelled``).
        Asking again is harmless; raises ``WorkflowClosedError`` if the execution ended
        before any cancellation was asked for.
        """
        check_text(reason, "a cancellation's reason", limit=MAX_PAYLOAD_BYTES)
        seq = await self.client.store.append_input(
            self.tenant, self.workflow_id, CancelRequested(0, 0.0, reason), dedup="cancel",
            now=self.client.clock())
        if seq is not None:
            await self.client.publish([workflow_ref(self.tenant, self.workflow_id, self._route)])
            return
        record = await self._record()
        if record.status in TERMINAL_STATUSES and not any(
                isinstance(e, CancelRequested) for e in await self.history()):
            raise WorkflowClosedError(
                f"execution {self.workflow_id!r} has already ended ({record.status}); there is "
                "nothing to cancel", workflow_id=self.workflow_id)

    async def result(self, timeout: float | None = None) -> R:
        """Wait for the execution to end; return its result or raise why it did not finish."""
        timeout = check_timeout(timeout, "result(timeout=)")
        wakeup = self.client.store.wakeup
        fresh, self._created_in = self._created_in, None
        # Where ends elsewhere go unreported and unseen, poll soon at first and back off to
        # poll_interval: a short workflow's result is seen within milliseconds. Where every
        # end is reported (``epoch``) or other processes' commits wake the waiters, which then
        # read again (SQLite's ``sees_changes``), a read now and then is only a safety net:
        # thousands of waiters each reading every poll_interval cost more than the work.
        poll = _FIRST_POLL
        async with asyncio.timeout(timeout):
            while True:
                with wakeup.watching(self.tenant, self.workflow_id) as ended:
                    if fresh is not None and fresh == wakeup.epoch and not (
                            wakeup.ended_recently(self.tenant, self.workflow_id)):
                        fresh = None  # just started here: wait for the end's notice first
                        await asyncio.wait([ended], timeout=self.client.poll_interval)
                        outcome = ended.result() if ended.done() else None
                        if outcome is not None and outcome.status in TERMINAL_STATUSES:
                            return self._outcome(outcome)
                        continue
                    fresh = None
                    record = await self._record()
                    if record.status in TERMINAL_STATUSES:
                        return self._outcome(Outcome(record.workflow, record.status,
                                                     record.result, record.error))
                    noticed = wakeup.epoch is not None or wakeup.sees_changes
                    await asyncio.wait([ended], timeout=_NOTICED_POLL if noticed else poll)
                    poll = min(poll * 2, self.client.poll_interval)
                    outcome = ended.result() if ended.done() else None
                    if outcome is not None and outcome.status in TERMINAL_STATUSES:
                        return self._outcome(outcome)  # the end's notice carried it: no read

    def _outcome(self, outcome: Outcome) -> R:
        if outcome.status == "completed":
            defn = self._definition or _known(outcome.workflow)
            result = self.client.decoded(outcome.result, f"result of {self.workflow_id!r}")
            return result if defn is None else defn.result.load(result)  # type: ignore[no-any-return]
        if outcome.status == "cancelled":
            raise WorkflowCancelledError(f"workflow {self.workflow_id!r} was cancelled",
                                         workflow_id=self.workflow_id)
        error = outcome.error or ErrorInfo("Error", "unknown")
        raise WorkflowFailedError(
            f"workflow {self.workflow_id!r} failed: {error.type}: {error.message}",
            workflow_id=self.workflow_id, error_type=error.type,
            error_message=error.message, traceback=error.traceback)

    async def describe(self) -> Description:
        """Status, state, data, pending actions and timers of the execution, and the await
        its coroutine waits at (from the newest snapshot and the events after it). A damaged
        history does not stop it: ``task_error`` then says what is damaged, and where."""
        record = await self._record()
        store = self.client.store
        actions, timers = await store.pending_work(self.tenant, self.workflow_id)
        try:
            suspended_at = await current_suspension(store, record)
        except HistoryError as exc:
            suspended_at = None
            record = replace(record, task_error=record.task_error or str(exc))
        return Description(record.workflow_id, record.run_id, record.tenant, record.workflow,
                           record.version, record.status, record.state, record.data,
                           record.created_at, record.updated_at, record.last_seq, actions,
                           timers, record.result, record.error, record.task_error, suspended_at,
                           record.queue, await waiting(store, record, actions, self.client.clock()),
                           record.priority, record.fairness_key)

    async def state_at(self, when: datetime | float | int, *, replay: bool = False,
                       run_id: str | None = None) -> StateAt:
        """The execution as it was at ``when``: its status, state, data and the await its
        coroutine was suspended at (``.suspended_at``, "file:line"), and the inputs it had
        received but not run yet.

        ``when`` is a ``datetime`` (naive: local time), epoch seconds (a ``float``) or a
        ``seq`` (an ``int``, as ``history()`` and ``durable show`` number events). A workflow
        task is one step: a moment inside one counts as its end. The answer comes from what
        the history recorded, starting from the newest snapshot before the moment; with
        ``replay=True`` the workflow's code (it must be importable here) is replayed up to
        it instead, and a ``NonDeterminismError`` says it no longer matches. ``run_id`` picks
        an earlier run the execution continued from (default: the current one). A moment
        before the run started, or a ``seq`` it has not reached, is a ``HistoryRangeError``.
        """
        if isinstance(when, bool) or not isinstance(when, (datetime, float, int)):
            raise ArgumentTypeError(f"state_at() takes a datetime, epoch seconds (a float) or a "
                                    f"seq (an int), not {show(when)}", parameter="when")
        if isinstance(when, float) and math.isnan(when):
            raise ValidationError("state_at() takes a moment, not NaN", parameter="when")
        if isinstance(when, datetime):
            try:
                when.timestamp()
            except (ValueError, OverflowError) as exc:  # naive, local, near year 1 or 9999
                raise ValidationError(f"state_at() cannot place {when!r} in time ({exc})",
                                      parameter="when") from None
        check_optional_id(run_id, "a run id")
        return await state_at(self, when, replay_code=replay, run_id=run_id)

    async def history(self, *, run_id: str | None = None) -> History:
        """The history of the execution's current run (or of ``run_id``, an earlier run it
        continued from): typed events with a dense ``seq``.

        A run that continued as new ends with ``WorkflowContinuedAsNew`` (naming the next
        run); each run's ``WorkflowStarted`` names the run it continues (``continued_from``).
        """
        check_optional_id(run_id, "a run id")
        await self._record()
        return History(await self.client.store.read_history(self.tenant, self.workflow_id,
                                                            run_id=run_id))


def _check_status(status: Any) -> None:
    if status is not None and status not in _STATUSES:
        raise ValidationError(f"status is one of {', '.join(_STATUSES)} or None, not "
                              f"{show(status)}", parameter="status")


def _epoch(since: float | datetime | None) -> float | None:
    """``since`` in epoch seconds (a datetime, a finite number, or None)."""
    if since is None or isinstance(since, datetime):
        return None if since is None else since.timestamp()
    return check_number(since, "since", minimum=-math.inf)


async def waiting(store: Store, record: ExecutionRecord, actions: list[ActionTask],
                  now: float) -> list[str]:
    """Why a running execution's work waits: the workflow and action routes no live worker
    hosts (``worker_hosts``)."""
    if record.status in TERMINAL_STATUSES:
        return []
    needed = [("w", route(record.workflow, record.queue))]
    needed += sorted({("a", route(a.name, a.queue)) for a in actions})
    missing = await store.unhosted(needed, since=now - HOSTS_TTL)
    routes = [r for kind, r in needed if kind == "a"]
    buckets = {r: [r, queue_bucket(unroute(r)[1])] for r in routes}  # its own, its queue's
    limited = await store.limit_waits([k for keys in buckets.values() for k in keys], now=now)
    return [unhosted_reason(*host) for host in needed if host in missing] + [
        f"action {unroute(r)[0]!r} on queue {unroute(r)[1]!r} {limited[key]}"
        for r in routes for key in buckets[r] if key in limited]


def _known(name: str) -> WorkflowDefinition | None:
    try:
        return workflow_definition(name)
    except UnknownWorkflowError:
        return None


class Client(Retention):
    """Starts executions and hands out handles to them. Get one with :func:`connect`.

    ``tenant`` is the tenant calls act for when they name none; ``tenants`` the client's
    scope, the tenants it may name (see :func:`connect`): ``.tenants`` is their set, or None
    for every tenant. ``clock`` (default ``time.time``) is where the client, and the workers
    and the local dispatcher built on it, read the time; ``durable.testing`` passes a virtual
    one. ``codec`` and ``max_payload_bytes``: see :func:`connect`.
    """

    def __init__(self, store: Store, *, dispatcher: Dispatcher | None = None,
                 tenant: str | None = None, tenants: str | Iterable[str] | None = None,
                 poll_interval: float = 0.2, clock: Clock = SYSTEM_CLOCK,
                 codec: Codec | None = None, max_payload_bytes: int = MAX_PAYLOAD_BYTES) -> None:
        self._tenant_own, self._scope = scope(tenant, tenants)
        self.codec = check_codec(codec)
        self.max_payload_bytes = check_payload_limit(max_payload_bytes)
        if self.codec is not None:
            from ._stores._codec import with_codec

            store = with_codec(store, self.codec)
        self.store = store
        self.clock = clock
        self.dispatcher: Dispatcher = dispatcher or LocalDispatcher(store, clock=clock)
        self.poll_interval = poll_interval
        self._workers: list[EagerWorker] = []  # this client's running workers, for eager starts

    @traced("start")
    async def start(self, workflow: Callable[[Context, Unpack[Ts]], Awaitable[R]] | str,
                    *args: Unpack[Ts], id: str | None = None, tenant: str | None = None,
                    queue: str | None = None, priority: int = 0,
                    fairness_key: str | None = None, on_conflict: OnConflict | None = None,
                    id_reuse: IdReuse = "allow") -> WorkflowHandle[R]:
        """Start ``workflow`` with ``args`` under workflow id ``id`` (default: a new UUID), on
        task queue ``queue`` (default: the workflow's own, see ``durable.workflow``).

        ``priority`` (an int in the int32 range, higher first; default 0): claims take the
        execution's ready tasks (and those of its actions and children, unless a call gives
        another) before lower ones. ``fairness_key`` (an id, default none): ready tasks of
        equal priority are taken round-robin across (tenant, fairness key), so one key's
        backlog holds another key's ready task back by at most one round.

        An id that an execution has already: while it runs, ``on_conflict`` decides:
        ``"use_existing"`` returns its handle, ``"fail"`` raises
        ``WorkflowAlreadyStartedError``, ``"terminate_existing"`` ends its run (recorded as
        ``WorkflowTerminated``, its parent told) and starts a new run; by default (None) the
        handle if it runs the same workflow with the same arguments, else the error. Once it
        has ended, ``id_reuse`` decides: ``"allow"`` (default) starts a new run under the
        id, ``"allow_failed_only"`` only if it did not complete, ``"reject"`` raises. A new run
        under the id names the one it replaced (``WorkflowStarted.previous_run``).
        Arguments and policies are validated before anything is written.
        """
        defn = workflow_definition(workflow)
        tenant = self._tenant(tenant)
        workflow_id = str(uuid.uuid4()) if id is None else check_id(id, "a workflow id")
        on = defn.queue if queue is None else check_queue(queue, "start(queue=)")
        priority = check_priority(priority, "start(priority=)")
        key = None if fairness_key is None else check_id(fairness_key, "start(fairness_key=)")
        check_policies(on_conflict, id_reuse)
        with payload_limit(self.max_payload_bytes):
            a, k = defn.params.dump(tuple(args), {})
        started = WorkflowStarted(1, 0.0, defn.name, defn.version, workflow_id, uuid.uuid4().hex,
                                  tenant, a, k, queue=on, priority=priority, fairness_key=key,
                                  trace=current_trace())
        began, epoch = await start(self, started, self._workers, on_conflict=on_conflict,
                                   id_reuse=id_reuse)
        handle: WorkflowHandle[R] = WorkflowHandle(self, workflow_id, tenant, defn)
        if began:
            handle._route, handle._created_in = route(defn.name, on), epoch
        return handle

    @property
    def tenant(self) -> str:
        """The tenant the client's calls act for when they name none."""
        return self._tenant_own

    @property
    def tenants(self) -> frozenset[str] | None:
        """The tenants the client may act for (its scope); None: every tenant."""
        return self._scope

    def _tenant(self, tenant: str | None) -> str:
        """The tenant a call names, or the client's (None); the caller's work goes in its lane
        (``durable._lanes``) from now on."""
        name = self.tenant if tenant is None else self.acts_for(tenant)
        enter(name)
        return name

    def acts_for(self, tenant: str) -> str:
        """``tenant``, if this client may act for it; else ``TenantPermissionError``."""
        return permit(self.tenants, tenant)

    def _tenant_filter(self, tenant: str | None, all_tenants: bool, what: str) -> str | None:
        """The tenant a listing reads (None: every tenant, which needs ``tenants="*"``)."""
        if all_tenants:
            permit_all(self.tenants, f"{what}(all_tenants=True)")
            if tenant is not None:
                raise InvalidArgumentError(f"{what}() takes tenant= or all_tenants=True, not "
                                           "both", parameter="tenant")
            return None
        return self._tenant(tenant)

    async def publish(self, refs: list[TaskRef], *, sticky: bool = True) -> None:
        """Tell the workers that tasks became runnable (after the store committed them);
        ``sticky=False``: to any worker, not first to one that caches the execution.

        Best effort: if a hint is lost, the store's outbox sends it again.
        """
        try:
            await self.dispatcher.publish(refs, sticky=sticky)
        except Exception:
            logger.warning("could not announce %d task(s) (%s); the server will re-dispatch "
                           "them", len(refs), refs[0], exc_info=True)

    async def complete_action(self, token: str, result: Any = None) -> None:
        """Record ``result`` as the outcome of the action attempt that handed it off
        (``durable.action_info().complete_later()`` returned ``token``); the workflow goes on.
        ``ActionTokenError`` if the attempt no longer waits for it (see ``_completion``)."""
        await _completion.complete(self, token, result)

    async def fail_action(self, token: str, error: BaseException | str) -> None:
        """The handed-off attempt failed with ``error``: the call is retried as its ``Retry``
        says (the action runs again), else it fails in the workflow."""
        await _completion.fail(self, token, error)

    async def heartbeat_action(self, token: str, details: Any = None) -> None:
        """The handed-off attempt is alive (within its ``heartbeat_timeout``), and with
        ``details`` how far it got (the next attempt reads them, as ``heartbeat()``'s)."""
        await _completion.heartbeat(self, token, details)

    async def schedule(self, workflow: Callable[[Context, Unpack[Ts]], Awaitable[Any]] | str,
                       *args: Unpack[Ts], id: str, cron: str | None = None,
                       every: Duration | None = None, offset: Duration = 0.0,
                       timezone: str = "UTC", overlap: Overlap | str = Overlap.SKIP,
                       catchup_window: Duration = DEFAULT_CATCHUP_WINDOW, paused: bool = False,
                       note: str = "", tenant: str | None = None,
                       replace: bool = False) -> ScheduleHandle:
        """Start ``workflow(*args)`` on a cron expression or every ``every`` seconds.

        ``cron`` is read by croniter in ``timezone`` (an IANA name); ``every`` (>= 1 s, or a
        timedelta) is aligned to the epoch plus ``offset``. ``overlap`` says what happens
        when a run is due while an earlier one still runs (``durable.Overlap``); due times
        missed while no scheduler ran are started late if they are at most
        ``catchup_window`` old. Runs are started by ``durable server`` or by an embedded
        worker (memory, SQLite), each exactly once, with the workflow id
        ``<id>-<due time, UTC>``. Creating a schedule that exists with the same definition
        returns its handle; with another definition it raises
        ``ScheduleAlreadyExistsError`` unless ``replace``. Bad input raises
        ``InvalidScheduleError`` and writes nothing.
        """
        return await create_schedule(
            self, workflow_definition(workflow), tuple(args), schedule_id=id,
            tenant=self._tenant(tenant), cron=cron, every=every, offset=offset, tz=timezone,
            overlap=overlap, catchup_window=catchup_window, paused=paused, note=note,
            replace_existing=replace)

    def get_schedule(self, schedule_id: str, *, tenant: str | None = None) -> ScheduleHandle:
        """The handle of an existing schedule (checked on first use)."""
        return ScheduleHandle(self, check_id(schedule_id, "a schedule id"), self._tenant(tenant))

    async def list_schedules(self, *, limit: int = 100, tenant: str | None = None,
                             all_tenants: bool = False) -> list[ScheduleDescription]:
        """Schedules of this client's tenant (or ``tenant``, or all tenants), by id."""
        where = self._tenant_filter(tenant, all_tenants, "list_schedules")
        check_count(limit, "list_schedules(limit=)", maximum=_MAX_LIST)
        records = await self.store.list_schedules(where, limit=limit)
        return [describe(r) for r in records]

    def decoded(self, payload: Any, where: str) -> Any:
        """A payload that reached this client without its store (an end's notice), decoded."""
        return payload if self.codec is None else self.codec.decode(payload, where)

    def get_handle(self, workflow_id: str, *, tenant: str | None = None) -> WorkflowHandle[Any]:
        """The handle of an existing execution (checked on first use)."""
        return WorkflowHandle(self, check_id(workflow_id, "a workflow id"), self._tenant(tenant))

    async def list(self, *, status: str | None = None, limit: int = 100,
                   tenant: str | None = None, all_tenants: bool = False) -> list[ExecutionRecord]:
        """Executions of this client's tenant (or ``tenant``, or all tenants), newest first."""
        where = self._tenant_filter(tenant, all_tenants, "list")
        _check_status(status)
        check_count(limit, "list(limit=)", maximum=_MAX_LIST)
        return await self.store.list_executions(where, status=status, limit=limit)

    async def iter_executions(self, *, workflow: str | None = None, status: str | None = None,
                              since: float | datetime | None = None, tenant: str | None = None,
                              all_tenants: bool = False,
                              page: int = 500) -> AsyncIterator[ExecutionRecord]:
        """Every matching execution of this client's tenant (or ``tenant``, or all tenants),
        oldest first.

        ``workflow`` is a registered name, ``since`` a datetime or epoch seconds (executions
        created then or later). The store is read ``page`` records at a time.
        """
        where = self._tenant_filter(tenant, all_tenants, "iter_executions")
        if workflow is not None:
            check_id(workflow, "a workflow name")
        _check_status(status)
        check_count(page, "iter_executions(page=)", minimum=1, maximum=_MAX_LIST)
        since_ts = _epoch(since)
        after: ExecutionRecord | None = None
        while True:
            records = await self.store.scan_executions(
                where, workflow=workflow, status=status, since=since_ts, after=after, limit=page)
            for record in records:
                yield record
            if len(records) < page:
                return
            after = records[-1]

    async def close(self) -> None:
        """Close the dispatcher and the store."""
        try:
            await self.dispatcher.close()
        finally:
            await self.store.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()
