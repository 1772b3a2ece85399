"""``postgresql://…``: the production store, on asyncpg with a connection pool.

Concurrency model:

* Every write is one statement (the hot ones call a PL/pgSQL function created by the
  migrations), so each is atomic; asyncpg prepares each statement once per connection, and
  the pool does not reset sessions (no extra round trip).
* Group commit: concurrent calls of the hot operations (create, append, commit, complete,
  and the reads of histories and executions) are sent together (``durable._batching.Batcher``): the
  writes as one pipelined transaction (``fetchmany``), the reads as one statement. So a worker
  running many tasks pays one round trip and one WAL flush per batch, not per task.
* Writes to an execution's history lock its ``executions`` row first (``FOR UPDATE``): that
  serializes appends and commits of one execution and decides the next ``seq``. A commit also
  needs the lease owner on the locked ``workflow_tasks`` row.
* Claims, ``dispatch_due`` and ``fire_due_timers`` lock with ``FOR UPDATE SKIP LOCKED``, so
  any number of workers and servers take disjoint rows and never wait for each other
  (``fire_due_timers`` skips the timers of an execution that is being written just then).
* Lost connections become ``StoreUnavailableError``; the pool then replaces all of them.
* ``wakeup`` wakes this process's pollers; other processes learn of work from their
  dispatcher. Ends of executions and answers to requests are also relayed between processes
  by ``NOTIFY`` / ``LISTEN`` (channels ``durable_ended`` and ``durable_replied``).
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Collection, Sequence
from typing import Any, Final

import asyncpg
import msgspec
from msgspec.structs import replace

from ..._history import ErrorInfo, Event, TimerFired, WorkflowStarted, decode_event, encode_event
from ...errors import StoreUnavailableError, WorkflowNotFoundError
from ..._batching import Batcher
from .._commit import Committer
from .._records import (
    TERMINAL_STATUSES, ActionTask, ExecutionRecord, Outcome, Reply, Request, Snapshot, TaskRef,
    TimerRecord, WorkflowCommit, WorkflowTask, workflow_ref,
)
from .._wakeup import Wakeup
from . import _statements as sql
from ._effects import COMMIT_EFFECTS, effect_columns
from ._schedules import PostgresSchedules
from ._transactions import PostgresTransactions
from ._schema import (
    Target, is_connection_lost, is_unavailable, migrate_txn, parse_url, redact, unavailable,
)

__all__ = ["PostgresStore", "migrate"]

COMMAND_TIMEOUT: Final = 60.0  # seconds; a statement that takes longer means trouble
# NOTIFY payload: tenant, workflow id, workflow, status and, when small enough, the base64 of
# MessagePack [result, error], joined by _SEP (a NOTIFY payload is at most 8000 bytes).
_ENDED_CHANNEL: Final = "durable_ended"
_REPLIED_CHANNEL: Final = "durable_replied"  # NOTIFY payload: tenant, _SEP, workflow_id, _SEP, id
_SEP: Final = "\x1f"
_NOTIFY_OUTCOME_LIMIT: Final = 6000

# One encoder and one decoder per payload type, built once (msgspec performance tips).
_encode: Final = msgspec.msgpack.Encoder().encode
_decode_any: Final = msgspec.msgpack.Decoder().decode
_decode_list: Final = msgspec.msgpack.Decoder(list[Any]).decode
_decode_dict: Final = msgspec.msgpack.Decoder(dict[str, Any]).decode
_decode_error: Final = msgspec.msgpack.Decoder(ErrorInfo).decode
_EMPTY_DATA: Final = _encode({})
_NO_RESULT: Final = _encode(None)


class PostgresStore(Committer, PostgresSchedules, PostgresTransactions):
    """A ``Store`` in a PostgreSQL database; open it with :meth:`open`."""

    def __init__(self, url: str, pool: asyncpg.Pool, target: Target) -> None:
        self.url = url
        self.wakeup = Wakeup()
        self._pool = pool
        self._target = target
        self._listener: asyncpg.Connection | None = None  # relays other processes' ends
        self._listening = asyncio.Lock()
        self._writes: dict[str, Batcher[tuple[Any, ...], Any]] = {}
        self._histories: Batcher[tuple[str, str, int, str | None], list[Event]] = Batcher(
            self._read_histories, self._read_history, shared_errors=(StoreUnavailableError,))
        self._executions: Batcher[tuple[str, str], asyncpg.Record | None] = Batcher(
            self._select_executions, self._select_execution,
            shared_errors=(StoreUnavailableError,))

    async def _listen(self) -> None:
        """(Re)connect the ``LISTEN`` connection that turns other processes' ends into
        ``wakeup.ended``; without it result waiters simply poll."""
        if self._listener is not None and not self._listener.is_closed():
            return
        async with self._listening:
            if self._listener is not None:
                if not self._listener.is_closed():
                    return  # another task reconnected it meanwhile
                self.wakeup.disconnected()
                self._listener.terminate()
                self._listener = None
            try:
                listener = await asyncpg.connect(
                    self._target.dsn, server_settings=self._target.server_settings, timeout=5.0)
            except Exception as exc:  # polling still works
                if not is_unavailable(exc):
                    raise
                return
            try:
                await listener.add_listener(_ENDED_CHANNEL, self._on_ended)
                await listener.add_listener(_REPLIED_CHANNEL, self._on_replied)
            except Exception as exc:
                listener.terminate()
                if not is_unavailable(exc):
                    raise
                return
            listener.add_termination_listener(self._on_listener_lost)
            self._listener = listener
            self.wakeup.connected()

    def _on_listener_lost(self, connection: Any) -> None:
        if connection is self._listener:
            self.wakeup.disconnected()

    def _on_ended(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        tenant, workflow_id, *rest = payload.split(_SEP)
        self.wakeup.ended(tenant, workflow_id, _decode_outcome(rest))

    def _on_replied(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        tenant, workflow_id, request_id = payload.split(_SEP, 2)
        self.wakeup.replied(tenant, workflow_id, request_id)

    @classmethod
    async def open(cls, url: str) -> PostgresStore:
        """Connect a pool to the database ``url`` names and apply pending migrations."""
        target = parse_url(url)
        pool = await _create_pool(url, target)
        try:
            async with pool.acquire() as conn:
                await migrate_txn(conn, target, url)
        except BaseException as exc:
            pool.terminate()
            if is_unavailable(exc):
                raise unavailable(url, exc) from exc
            raise
        return cls(url, pool, target)

    # ---- the driver, with its errors mapped -----------------------------------------------

    async def _fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        try:
            rows: list[asyncpg.Record] = await self._pool.fetch(query, *args)
        except Exception as exc:
            raise await self._mapped(exc) from exc
        return rows

    async def _fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        try:
            row: asyncpg.Record | None = await self._pool.fetchrow(query, *args)
        except Exception as exc:
            raise await self._mapped(exc) from exc
        return row

    async def _fetchval(self, query: str, *args: Any) -> Any:
        try:
            return await self._pool.fetchval(query, *args)
        except Exception as exc:
            raise await self._mapped(exc) from exc

    async def _grouped(self, query: str, *args: Any) -> Any:
        """``_fetchval`` of a one-row write, sent in one transaction with concurrent calls of
        the same statement (group commit)."""
        batcher = self._writes.get(query)
        if batcher is None:
            async def many(calls: Sequence[tuple[Any, ...]]) -> list[Any]:
                try:
                    rows = await self._pool.fetchmany(query, calls)
                except Exception as exc:
                    raise await self._mapped(exc) from exc
                return [row[0] for row in rows]

            async def one(call: tuple[Any, ...]) -> Any:
                return await self._fetchval(query, *call)

            batcher = self._writes[query] = Batcher(many, one,
                                                    shared_errors=(StoreUnavailableError,))
        return await batcher.submit(args)

    async def _mapped(self, exc: Exception) -> Exception:
        """A lost connection or an unavailable server becomes ``StoreUnavailableError``.

        A lost connection usually means the server restarted and took every connection with
        it: the pool then replaces them all, so the next call works without failing again.
        """
        if not is_unavailable(exc):
            return exc
        if is_connection_lost(exc) and not self._pool.is_closing():
            await self._pool.expire_connections()
        return unavailable(self.url, exc)

    # ---- executions and history ---------------------------------------------------------

    async def create_execution(self, started: Event, *, now: float,
                               lease_to: tuple[str, float] | None = None,
                               ) -> tuple[ExecutionRecord, bool]:
        """Create an execution from its ``WorkflowStarted`` event (see ``Store``)."""
        if not isinstance(started, WorkflowStarted):
            raise TypeError(f"create_execution needs a WorkflowStarted event, not {started!r}")
        s = started
        await self._listen()  # before the execution exists, so that its end is heard
        body = encode_event(replace(s, seq=1, time=now))
        owner, lease_until = (None, None) if lease_to is None else lease_to
        if not await self._grouped(sql.CREATE_EXECUTION, s.tenant, s.workflow_id, s.run_id,
                                    s.workflow, s.version, now, _EMPTY_DATA, _NO_RESULT, body,
                                    owner, lease_until):
            existing = await self.get_execution(s.tenant, s.workflow_id)
            if existing is None:  # deleted in between: the caller may simply try again
                raise StoreUnavailableError(
                    f"execution {s.workflow_id!r} of tenant {s.tenant!r} changed while being "
                    "created; try again", url=redact(self.url))
            return existing, False
        if lease_to is None:
            self.wakeup.notify()
        return ExecutionRecord(s.tenant, s.workflow_id, s.run_id, s.workflow, s.version,
                               "running", now, now, 1), True

    async def get_execution(self, tenant: str, workflow_id: str) -> ExecutionRecord | None:
        """The execution, or None (and from here on, other processes' ends wake its waiters)."""
        await self._listen()
        row = await self._executions.submit((tenant, workflow_id))
        return None if row is None else _record(row)

    async def _select_execution(self, key: tuple[str, str]) -> asyncpg.Record | None:
        return await self._fetchrow(sql.SELECT_EXECUTION, *key)

    async def _select_executions(self, keys: Sequence[tuple[str, str]]) -> list[asyncpg.Record | None]:
        rows = await self._fetch(sql.SELECT_EXECUTIONS, [k[0] for k in keys], [k[1] for k in keys])
        found: list[asyncpg.Record | None] = [None] * len(keys)
        for row in rows:
            found[row[0] - 1] = row[1:]
        return found

    async def list_executions(self, tenant: str | None = None, *, status: str | None = None,
                              limit: int = 100) -> list[ExecutionRecord]:
        """Executions, newest first; all tenants when ``tenant`` is None."""
        if tenant is None:
            rows = await self._fetch(sql.LIST_ALL_EXECUTIONS, status, limit)
        else:
            rows = await self._fetch(sql.LIST_TENANT_EXECUTIONS, tenant, status, limit)
        return [_record(row) for row in rows]

    async def scan_executions(self, tenant: str | None = None, *, workflow: str | None = None,
                              status: str | None = None, since: float | None = None,
                              after: ExecutionRecord | None = None,
                              limit: int = 500) -> list[ExecutionRecord]:
        """Executions oldest first, filtered and paged (see ``Store.scan_executions``)."""
        cursor = (None, None, None) if after is None else \
            (after.created_at, after.tenant, after.workflow_id)
        rows = await self._fetch(sql.SCAN_EXECUTIONS, tenant, workflow, status, since, *cursor,
                                 limit)
        return [_record(row) for row in rows]

    async def read_history(self, tenant: str, workflow_id: str, *, run_id: str | None = None,
                           after_seq: int = 0, limit: int | None = None) -> list[Event]:
        """Events with ``seq > after_seq`` of the run (default: the current one), in order."""
        if limit is not None:
            rows = await self._fetch(sql.SELECT_EVENTS_PAGE, tenant, workflow_id, run_id,
                                     after_seq, limit)
            return [decode_event(row[0]) for row in rows]
        return await self._histories.submit((tenant, workflow_id, after_seq, run_id))

    async def _read_history(self, key: tuple[str, str, int, str | None]) -> list[Event]:
        rows = await self._fetch(sql.SELECT_EVENTS, key[0], key[1], key[3], key[2])
        return [decode_event(row[0]) for row in rows]

    async def _read_histories(self, keys: Sequence[tuple[str, str, int, str | None]]
                              ) -> list[list[Event]]:
        rows = await self._fetch(sql.SELECT_HISTORIES, [k[0] for k in keys],
                                 [k[1] for k in keys], [k[2] for k in keys], [k[3] for k in keys])
        histories: list[list[Event]] = [[] for _ in keys]
        for i, body in rows:
            histories[i - 1].append(decode_event(body))
        return histories

    async def append_input(self, tenant: str, workflow_id: str, event: Event, *,
                           dedup: str | None = None, now: float) -> int | None:
        """Append an input at the next ``seq`` and make the execution runnable (see ``Store``)."""
        head, tail = _split_at_seq(event, now)
        seq: int | None = await self._grouped(sql.APPEND, tenant, workflow_id, head, tail,
                                               dedup, now)
        if seq == 0:
            raise WorkflowNotFoundError(f"no execution {workflow_id!r} in tenant {tenant!r}",
                                        workflow_id=workflow_id, tenant=tenant)
        if seq is not None:
            self.wakeup.notify()
        return seq

    # ---- workflow tasks -----------------------------------------------------------------

    async def _commit(self, task: WorkflowTask, commit: WorkflowCommit) -> bool:
        """One round trip: ``COMMIT``, grouped with concurrent commits, or (with cancelled
        actions, starts or signals) ``COMMIT_EFFECTS`` in a transaction of its own, since it
        locks every execution it writes, in order, before it writes any. Replies add a
        statement to the same transaction."""
        effects = commit.cancelled_actions or commit.starts or commit.signals
        args = _commit_args(task, commit)
        if effects:
            args = (*args[:-2], *effect_columns(commit.cancelled_actions, commit.starts,
                                                commit.signals, commit.now, _split_at_seq),
                    *args[-2:])
        statement = COMMIT_EFFECTS if effects else sql.COMMIT
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
                                       *_reply_columns(replies), _REPLIED_CHANNEL)
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
        return [WorkflowTask(t, w, name, attempt, requested=requested)
                for t, w, name, attempt, requested in rows]

    async def release_workflow_task(self, task: WorkflowTask, owner: str, *, delay: float,
                                    error: str | None, now: float) -> None:
        """Give a leased workflow task back, to be retried after ``delay`` seconds."""
        await self._fetchval(sql.RELEASE, task.tenant, task.workflow_id, owner, now + delay,
                             error)

    # ---- action tasks -------------------------------------------------------------------

    async def claim_action_tasks(self, actions: Collection[str], owner: str, *, lease: float,
                                 now: float, limit: int) -> list[ActionTask]:
        """Lease up to ``limit`` due action tasks of the named actions."""
        if not actions or limit <= 0:
            return []
        rows = await self._fetch(sql.CLAIM_ACTION_TASKS, owner, now + lease, now, list(actions),
                                 limit)
        return [_action(row) for row in rows]

    async def extend_action_lease(self, task: ActionTask, owner: str, *, lease: float,
                                  now: float) -> bool:
        """Keep a running action's lease alive; False if the lease was lost."""
        return bool(await self._fetchval(sql.EXTEND_ACTION, now + lease, *_action_key(task),
                                         owner))

    async def complete_action_task(self, task: ActionTask, event: Event, *, now: float) -> bool:
        """Record an action's outcome (first completion wins) and drop its task, atomically."""
        head, tail = _split_at_seq(event, now)
        done: bool = await self._grouped(sql.COMPLETE_ACTION, *_action_key(task), head, tail,
                                          f"a{task.run_id}/{task.cmd}", now)
        if done:
            self.wakeup.notify()
        return done

    async def retry_action_task(self, task: ActionTask, owner: str, *, visible_at: float,
                                error: str, now: float) -> None:
        """Schedule the next attempt of a failed action at ``visible_at``."""
        await self._fetchval(sql.RETRY_ACTION, task.attempt + 1, *_action_key(task), visible_at,
                             error, owner)

    # ---- dispatch -----------------------------------------------------------------------

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
        claimed: list[WorkflowTask] = []
        key = None
        for tenant, workflow_id, workflow, attempt, after_seq, run_id, requested, body in rows:
            if (tenant, workflow_id) != key:
                key = (tenant, workflow_id)
                history = None if after_seq is None else []
                claimed.append(WorkflowTask(tenant, workflow_id, workflow, attempt,
                                            history=history, after_seq=after_seq or 0,
                                            run_id="" if history is None else run_id,
                                            requested=requested))
            if body is not None and history is not None:
                history.append(decode_event(body))
        return claimed

    async def _claim_actions(self, claim: tuple[str, float, float], actions: Collection[str],
                             refs: list[TaskRef]) -> list[ActionTask]:
        rows = await self._fetch(sql.CLAIM_ACTION_REFS, *claim, list(actions),
                                 [r.tenant for r in refs], [r.workflow_id for r in refs],
                                 [r.run_id for r in refs], [r.cmd for r in refs])
        return [_action(row) for row in rows]

    async def dispatch_due(self, *, now: float, older_than: float, limit: int) -> list[TaskRef]:
        """The outbox: hints for claimable tasks last dispatched over ``older_than`` s ago."""
        if limit <= 0:
            return []
        rows = await self._fetch(sql.DISPATCH_DUE, now, now - older_than, limit)
        return [TaskRef(*row) for row in rows]

    # ---- requests -----------------------------------------------------------------------

    async def submit_request(self, request: Request, *, now: float) -> tuple[Request | None, bool]:
        """Record a query or update and make the execution runnable (see ``Store``)."""
        r = request
        row = await self._fetchrow(sql.SUBMIT_REQUEST, r.tenant, r.workflow_id, r.id, r.kind,
                                   r.name, _encode(r.args), now)
        kind, name, args, created_at, status, result, error, made = row  # type: ignore[misc]
        if status == "missing":
            raise WorkflowNotFoundError(f"no execution {r.workflow_id!r} in tenant {r.tenant!r}",
                                        workflow_id=r.workflow_id, tenant=r.tenant)
        if status == "closed":
            return None, False
        if made:
            self.wakeup.notify()
        return _request((r.tenant, r.workflow_id, r.id, kind, name, args, created_at, status,
                         result, error)), made

    async def get_request(self, tenant: str, workflow_id: str, request_id: str) -> Request | None:
        """The request, or None (and from here on, other processes' answers wake its waiters)."""
        await self._listen()
        row = await self._fetchrow(sql.SELECT_REQUEST, tenant, workflow_id, request_id)
        return None if row is None else _request(row)

    async def rearm_request(self, tenant: str, workflow_id: str, request_id: str, *,
                            now: float) -> bool:
        """Make a runnable task for a pending request that has none (see ``Store``)."""
        if not await self._fetchval(sql.NEEDS_REARM, tenant, workflow_id, request_id):
            return False  # the common case: one read, no lock
        made: bool = await self._fetchval(sql.REARM_REQUEST, tenant, workflow_id, request_id, now)
        if made:
            self.wakeup.notify()
        return made

    async def pending_requests(self, tenant: str, workflow_id: str) -> list[Request]:
        """The execution's requests no worker has answered or accepted, oldest first."""
        return [_request(row) for row in await self._fetch(sql.PENDING_REQUESTS, tenant,
                                                            workflow_id)]

    async def answer_requests(self, tenant: str, workflow_id: str, replies: Sequence[Reply], *,
                              now: float) -> None:
        """Record ``replies`` for requests not answered yet."""
        if replies:
            await self._fetchval(sql.ANSWER_REQUESTS, tenant, workflow_id,
                                 *_reply_columns(replies), _REPLIED_CHANNEL)
            self.wakeup.answered(tenant, workflow_id, replies)

    async def forget_request(self, tenant: str, workflow_id: str, request_id: str) -> None:
        """Delete the request."""
        await self._fetchval(sql.DELETE_REQUEST, tenant, workflow_id, request_id)

    # ---- timers and introspection -------------------------------------------------------

    async def fire_due_timers(self, *, now: float, limit: int) -> list[TaskRef]:
        """Record ``TimerFired`` for up to ``limit`` due timers (each exactly once)."""
        if limit <= 0:
            return []
        head, tail = _split_at_seq(TimerFired(0, now, 0), now)
        # Invariant: a TimerFired ends with its cmd; the function appends each timer's own.
        rows = await self._fetch(sql.FIRE_DUE_TIMERS, now, limit, head, tail[:-1])
        if rows:
            self.wakeup.notify()
        return [workflow_ref(tenant, workflow_id) for tenant, workflow_id in rows]

    # ---- snapshots ----------------------------------------------------------------------

    async def save_snapshot(self, snapshot: Snapshot, *, keep: int) -> None:
        """Keep ``snapshot`` and prune its run to the ``keep`` newest (one transaction)."""
        s = snapshot
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute(sql.SAVE_SNAPSHOT, s.tenant, s.workflow_id, s.run_id, s.seq,
                                   s.time, s.status, s.state, _encode(s.data), s.suspended_at)
                await conn.execute(sql.PRUNE_SNAPSHOTS, s.tenant, s.workflow_id, s.run_id, keep)
        except Exception as exc:
            raise await self._mapped(exc) from exc

    async def find_snapshot(self, tenant: str, workflow_id: str, run_id: str, *,
                            seq: int | None = None, time: float | None = None) -> Snapshot | None:
        """The run's newest snapshot at or before ``seq`` and ``time``."""
        row = await self._fetchrow(sql.FIND_SNAPSHOT, tenant, workflow_id, run_id, seq, time)
        if row is None:
            return None
        tenant, workflow_id, run_id, at_seq, at_time, status, state, data, suspended_at = row
        return Snapshot(tenant, workflow_id, run_id, at_seq, at_time, status, state,
                        _decode_dict(data), suspended_at)

    async def pending_work(self, tenant: str,
                           workflow_id: str) -> tuple[list[ActionTask], list[TimerRecord]]:
        """The execution's action tasks and timers that have not finished."""
        actions = await self._fetch(sql.PENDING_ACTIONS, tenant, workflow_id)
        timers = await self._fetch(sql.PENDING_TIMERS, tenant, workflow_id)
        return [_action(row) for row in actions], [TimerRecord(*row) for row in timers]

    async def next_wakeup(self, *, now: float) -> float | None:
        """The earliest time a timer, a delayed task or a schedule becomes due (None if nothing
        waits)."""
        due: float | None = await self._fetchval(sql.NEXT_WAKEUP)
        return due

    async def close(self) -> None:
        """Close the pool and the listening connection (idempotent)."""
        for batcher in (*self._writes.values(), self._histories, self._executions):
            await batcher.close()
        if self._listener is not None:
            self.wakeup.disconnected()
            self._listener.terminate()
            self._listener = None
        await self._pool.close()


async def migrate(url: str) -> int:
    """Apply the pending migrations of the database ``url`` names; return its schema version."""
    target = parse_url(url)
    try:
        conn = await asyncpg.connect(target.dsn, server_settings=target.server_settings)
    except Exception as exc:
        if is_unavailable(exc):
            raise unavailable(url, exc) from exc
        raise
    try:
        return await migrate_txn(conn, target, url)
    except Exception as exc:
        if is_unavailable(exc):
            raise unavailable(url, exc) from exc
        raise
    finally:
        await conn.close()


async def _create_pool(url: str, target: Target) -> asyncpg.Pool:
    try:
        pool: asyncpg.Pool = await asyncpg.create_pool(
            target.dsn, min_size=1, max_size=target.pool_size, command_timeout=COMMAND_TIMEOUT,
            server_settings=target.server_settings, reset=_keep_session)
    except Exception as exc:
        if is_unavailable(exc):
            raise unavailable(url, exc) from exc
        raise
    return pool


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Reset nothing when a connection goes back to the pool.

    asyncpg's default reset costs a round trip per operation (advisory unlocks, ``CLOSE ALL``,
    ``UNLISTEN *``, ``RESET ALL``); the store leaves no session state behind: it takes only
    transaction-scoped locks, never listens, declares no cursors and sets no settings. An open
    transaction is still rolled back by the pool itself.
    """


# ---- rows and payloads ----------------------------------------------------------------------


def _commit_args(task: WorkflowTask, commit: WorkflowCommit) -> tuple[Any, ...]:
    """The parameters of ``COMMIT``: ``durable_commit``'s, then the NOTIFY channel and payload
    of the execution's end (None while it runs)."""
    update = commit.update
    error = None if update.error is None else _encode(update.error)
    result = _encode(update.result)
    ended = update.status in TERMINAL_STATUSES
    notice = _notice(task, Outcome.of(task.workflow, update), result, error) if ended else None
    return (task.tenant, task.workflow_id, commit.owner, commit.expected_seq,
            [e.seq for e in commit.events], [encode_event(e) for e in commit.events],
            *_action_columns(commit.actions), [t.cmd for t in commit.timers],
            [t.fire_at for t in commit.timers], commit.cancelled_timers, update.status,
            update.state, _encode(update.data), result, error, commit.now, _ENDED_CHANNEL,
            notice)


def _notice(task: WorkflowTask, outcome: Outcome, result: bytes, error: bytes | None) -> str:
    """The NOTIFY payload of an execution's end (see ``_ENDED_CHANNEL``)."""
    head = _SEP.join((task.tenant, task.workflow_id, outcome.workflow, outcome.status))
    packed = base64.b64encode(_encode([result, error])).decode()
    if len(head) + len(packed) < _NOTIFY_OUTCOME_LIMIT:
        return head + _SEP + packed
    return head


def _decode_outcome(fields: list[str]) -> Outcome | None:
    """The outcome an end notice carries, or None (it was too large, or an older notice)."""
    if len(fields) != 3:
        return None
    workflow, status, packed = fields
    result, error = _decode_list(base64.b64decode(packed))
    return Outcome(workflow, status, _decode_any(result),
                   None if error is None else _decode_error(error))


def _split_at_seq(event: Event, now: float) -> tuple[bytes, bytes]:
    """Encode ``event`` at time ``now`` and cut it where its ``seq`` goes: (head, tail).

    Only the database knows the next ``seq`` of an append; it stores
    ``head || msgpack(seq) || tail`` (``durable_msgpack_uint``). Invariant: an event is a
    tagged ``array_like`` struct, encoded ``[tag, seq, time, ...]``; ``seq`` 0 is one byte.
    """
    body = encode_event(replace(event, seq=0, time=now))
    pos = _after_tag(body)
    if body[pos] != 0:
        raise RuntimeError(f"unexpected event encoding {body[:pos + 1]!r}: cannot place seq")
    return body[:pos], body[pos + 1:]


def _after_tag(body: bytes) -> int:
    """The offset after a MessagePack array header and the string (the tag) that follows."""
    first = body[0]
    pos = 1 if 0x90 <= first <= 0x9F else 3 if first == 0xDC else 5  # fixarray/array16/array32
    tag = body[pos]
    if 0xA0 <= tag <= 0xBF:  # fixstr
        return pos + 1 + (tag & 0x1F)
    if tag == 0xD9:  # str8
        return pos + 2 + body[pos + 1]
    raise RuntimeError(f"unexpected event encoding {body[:pos + 1]!r}: cannot place seq")


def _record(row: asyncpg.Record) -> ExecutionRecord:
    (tenant, workflow_id, run_id, workflow, version, status, created_at, updated_at, last_seq,
     state, data, result, error, task_error) = row
    return ExecutionRecord(tenant, workflow_id, run_id, workflow, version, status, created_at,
                           updated_at, last_seq, state, _decode_dict(data), _decode_any(result),
                           None if error is None else _decode_error(error), task_error)


def _action(row: asyncpg.Record | tuple[Any, ...]) -> ActionTask:
    tenant, workflow_id, run_id, cmd, name, args, kwargs, attempt, visible_at, last_error = row
    return ActionTask(tenant, workflow_id, run_id, cmd, name, _decode_list(args),
                      _decode_dict(kwargs), attempt, visible_at, last_error)


def _action_key(task: ActionTask) -> tuple[str, str, str, int]:
    return (task.tenant, task.workflow_id, task.run_id, task.cmd)


def _action_columns(actions: Sequence[ActionTask]) -> tuple[list[Any], ...]:
    """A commit's new action tasks as the column arrays ``durable_commit`` takes."""
    return ([a.cmd for a in actions], [a.name for a in actions],
            [_encode(a.args) for a in actions], [_encode(a.kwargs) for a in actions],
            [a.attempt for a in actions], [a.visible_at for a in actions],
            [a.last_error for a in actions])


def _request(row: asyncpg.Record | tuple[Any, ...]) -> Request:
    tenant, workflow_id, request_id, kind, name, args, created_at, status, result, error = row
    return Request(tenant, workflow_id, request_id, kind, name, _decode_list(args), created_at,
                   status, None if result is None else _decode_any(result),
                   None if error is None else _decode_error(error))


def _reply_columns(replies: Sequence[Reply]) -> tuple[list[Any], ...]:
    """Replies as the column arrays ``durable_answer`` takes, one per request (the last wins)."""
    last = list({r.id: r for r in replies}.values())
    return ([r.id for r in last], [r.status for r in last],
            [None if r.result is None else _encode(r.result) for r in last],
            [None if r.error is None else _encode(r.error) for r in last])
