"""``sqlite:///path.db``: the embedded store, one file that several processes may share.

Concurrency model:

* In a process, all database work runs on one dedicated thread that owns the one connection;
  the async methods hand it work with ``loop.run_in_executor``.
* Across processes, every write method is one transaction started with ``BEGIN IMMEDIATE``:
  it takes SQLite's write lock before reading, so read-check-write (expected ``seq``, dedup,
  lease ownership) is atomic. Dedup keys are also enforced by a unique index.
* Polled methods (claims, due timers) first look for due work with a plain read and take the
  write lock only when there is some, so idle pollers in many processes do not contend.
* Other processes' commits are noticed while someone waits for work: ``wakeup`` polls
  ``PRAGMA data_version`` (every 2 ms while things change, backing off to 50 ms).
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final, TypeVar

import msgspec
from msgspec.structs import replace

from ..._history import ErrorInfo, Event, TimerFired, WorkflowStarted, decode_event, encode_event
from ...errors import StoreUnavailableError, WorkflowNotFoundError
from .._commit import Committer
from .._records import (
    TERMINAL_STATUSES, ActionTask, ExecutionRecord, Reply, Request, Signal, Snapshot, Start,
    TaskRef, TimerRecord, WorkflowCommit, WorkflowTask, workflow_ref,
)
from .._wakeup import Wakeup
from .._migrations import migration_files
from ._requests import (
    DELETE_REQUEST, PENDING_REQUESTS, answer_txn, fetch_all, get_request, needs_rearm, rearm_txn,
    request_from_row, submit_request_txn,
)
from . import _statements as sql
from ._schedules import SQLiteSchedules
from ._transactions import SQLiteTransactions
from ._snapshots import find_snapshot, save_snapshot_txn

__all__ = ["SQLiteStore", "migrate"]

T = TypeVar("T")
Row = tuple[Any, ...]

BUSY_TIMEOUT: Final = 10.0  # seconds a transaction waits for another process's write lock
_URL_PREFIX: Final = "sqlite:///"

# One encoder and one decoder per payload type, built once (msgspec performance tips).
_encode: Final = msgspec.msgpack.Encoder().encode
_decode_any: Final = msgspec.msgpack.Decoder().decode
_decode_list: Final = msgspec.msgpack.Decoder(list[Any]).decode
_decode_dict: Final = msgspec.msgpack.Decoder(dict[str, Any]).decode
_decode_error: Final = msgspec.msgpack.Decoder(ErrorInfo).decode

# ---- the store ------------------------------------------------------------------------------


class SQLiteStore(Committer, SQLiteSchedules, SQLiteTransactions):
    """A ``Store`` in one SQLite file (WAL mode); open it with :meth:`open`."""

    def __init__(self, url: str, executor: ThreadPoolExecutor, conn: sqlite3.Connection) -> None:
        self.url = url
        # Other processes sharing the file are noticed by their commits (data_version).
        self.wakeup = Wakeup(changes=self._data_version)
        self._executor = executor
        self._conn = conn  # used only on the executor's one thread
        self._closed = False

    @classmethod
    async def open(cls, url: str) -> SQLiteStore:
        """Open (creating if needed) the file ``url`` names and apply pending migrations."""
        path = _path_from_url(url)
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="durable-sqlite")
        try:
            conn = await asyncio.get_running_loop().run_in_executor(executor, _connect, url, path)
        except BaseException as exc:
            executor.shutdown(wait=False)
            if isinstance(exc, sqlite3.DatabaseError):
                raise _unavailable(url, exc) from exc
            raise
        return cls(url, executor, conn)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` on the store's thread; driver errors become typed errors."""
        if self._closed:
            raise StoreUnavailableError(f"the SQLite store {self.url!r} is closed", url=self.url)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn, self._conn, *args)
        except sqlite3.DatabaseError as exc:
            raise _unavailable(self.url, exc) from exc

    async def _data_version(self) -> int:
        """A number that changes when another connection commits to the file."""
        return await self._run(_read_data_version)

    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` in one ``BEGIN IMMEDIATE`` transaction."""
        return await self._run(_in_transaction, fn, *args)

    # ---- executions and history ---------------------------------------------------------

    async def create_execution(self, started: Event, *, now: float,
                               lease_to: tuple[str, float] | None = None,
                               ) -> tuple[ExecutionRecord, bool]:
        """Create an execution from its ``WorkflowStarted`` event (see ``Store``)."""
        if not isinstance(started, WorkflowStarted):
            raise TypeError(f"create_execution needs a WorkflowStarted event, not {started!r}")
        record, created = await self._write(_create_txn, started, now, lease_to)
        if created and lease_to is None:
            self.wakeup.notify()
        return record, created

    async def get_execution(self, tenant: str, workflow_id: str) -> ExecutionRecord | None:
        """The execution, or None."""
        return await self._run(_get_execution, tenant, workflow_id)

    async def list_executions(self, tenant: str | None = None, *, status: str | None = None,
                              limit: int = 100) -> list[ExecutionRecord]:
        """Executions, newest first; all tenants when ``tenant`` is None."""
        return await self._run(_list_executions, tenant, status, limit)

    async def scan_executions(self, tenant: str | None = None, *, workflow: str | None = None,
                              status: str | None = None, since: float | None = None,
                              after: ExecutionRecord | None = None,
                              limit: int = 500) -> list[ExecutionRecord]:
        """Executions oldest first, filtered and paged (see ``Store.scan_executions``)."""
        cursor = (None, None, None) if after is None else \
            (after.created_at, after.tenant, after.workflow_id)
        return await self._run(_scan_executions, (tenant, workflow, status, since, *cursor, limit))

    async def read_history(self, tenant: str, workflow_id: str, *, run_id: str | None = None,
                           after_seq: int = 0, limit: int | None = None) -> list[Event]:
        """Events with ``seq > after_seq`` of the run (default: the current one), in order."""
        return await self._run(_read_history, tenant, workflow_id, run_id, after_seq,
                               -1 if limit is None else limit)

    async def append_input(self, tenant: str, workflow_id: str, event: Event, *,
                           dedup: str | None = None, now: float) -> int | None:
        """Append an input at the next ``seq`` and make the execution runnable (see ``Store``)."""
        seq = await self._write(_append_txn, tenant, workflow_id, event, dedup, now)
        if seq is not None:
            self.wakeup.notify()
        return seq

    # ---- workflow tasks -----------------------------------------------------------------

    async def _commit(self, task: WorkflowTask, commit: WorkflowCommit) -> bool:
        return await self._write(_commit_txn, task, commit)

    async def _finish(self, task: WorkflowTask, owner: str, expected_seq: int,
                      replies: Sequence[Reply], now: float) -> bool:
        return await self._write(_finish_txn, task, owner, expected_seq, replies)

    async def claim_workflow_tasks(self, workflows: Collection[str], owner: str, *,
                                   lease: float, now: float, limit: int) -> list[WorkflowTask]:
        """Lease up to ``limit`` runnable workflow tasks of the named workflows."""
        query = (now, json.dumps(list(workflows)), limit)
        return await self._run(_claim_workflow_tasks, query, owner, now + lease)

    async def release_workflow_task(self, task: WorkflowTask, owner: str, *, delay: float,
                                    error: str | None, now: float) -> None:
        """Give a leased workflow task back, to be retried after ``delay`` seconds."""
        await self._write(_release_txn, task, owner, now + delay, error)

    # ---- action tasks -------------------------------------------------------------------

    async def claim_action_tasks(self, actions: Collection[str], owner: str, *, lease: float,
                                 now: float, limit: int) -> list[ActionTask]:
        """Lease up to ``limit`` due action tasks of the named actions."""
        query = (now, json.dumps(list(actions)), limit)
        return await self._run(_claim_action_tasks, query, owner, now + lease)

    async def extend_action_lease(self, task: ActionTask, owner: str, *, lease: float,
                                  now: float) -> bool:
        """Keep a running action's lease alive; False if the lease was lost."""
        params = (now + lease, *_action_key(task), owner)
        return await self._write(_changed, sql.EXTEND_ACTION, params)

    async def complete_action_task(self, task: ActionTask, event: Event, *, now: float) -> bool:
        """Record an action's outcome (first completion wins) and drop its task, atomically."""
        done = await self._write(_complete_action_txn, task, event, now)
        if done:
            self.wakeup.notify()
        return done

    async def retry_action_task(self, task: ActionTask, owner: str, *, visible_at: float,
                                error: str, now: float) -> None:
        """Schedule the next attempt of a failed action at ``visible_at``."""
        params = (task.attempt + 1, visible_at, error, *_action_key(task), owner)
        await self._write(_changed, sql.RETRY_ACTION, params)

    # ---- dispatch -----------------------------------------------------------------------

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

    async def dispatch_due(self, *, now: float, older_than: float, limit: int) -> list[TaskRef]:
        """The outbox: hints for claimable tasks last dispatched over ``older_than`` s ago."""
        if limit <= 0:
            return []
        return await self._run(_dispatch_due, (now - older_than, now, limit))

    # ---- requests -----------------------------------------------------------------------

    async def submit_request(self, request: Request, *, now: float) -> tuple[Request | None, bool]:
        """Record a query or update and make the execution runnable (see ``Store``)."""
        stored, made = await self._write(submit_request_txn, request, now)
        if made:
            self.wakeup.notify()
        return stored, made

    async def get_request(self, tenant: str, workflow_id: str, request_id: str) -> Request | None:
        """The request, or None."""
        return await self._run(get_request, tenant, workflow_id, request_id)

    async def rearm_request(self, tenant: str, workflow_id: str, request_id: str, *,
                            now: float) -> bool:
        """Make a runnable task for a pending request that has none (see ``Store``)."""
        if not await self._run(needs_rearm, tenant, workflow_id, request_id):
            return False  # the common case: a read, no write lock
        made = await self._write(rearm_txn, tenant, workflow_id, request_id, now)
        if made:
            self.wakeup.notify()
        return made

    async def pending_requests(self, tenant: str, workflow_id: str) -> list[Request]:
        """The execution's requests no worker has answered or accepted, oldest first."""
        rows = await self._run(fetch_all, PENDING_REQUESTS, (tenant, workflow_id))
        return [request_from_row(row) for row in rows]

    async def answer_requests(self, tenant: str, workflow_id: str, replies: Sequence[Reply], *,
                              now: float) -> None:
        """Record ``replies`` for requests not answered yet."""
        if replies:
            await self._write(answer_txn, tenant, workflow_id, replies)
            self.wakeup.answered(tenant, workflow_id, replies)

    async def forget_request(self, tenant: str, workflow_id: str, request_id: str) -> None:
        """Delete the request."""
        await self._write(_changed, DELETE_REQUEST, (tenant, workflow_id, request_id))

    # ---- timers and introspection -------------------------------------------------------

    async def fire_due_timers(self, *, now: float, limit: int) -> list[TaskRef]:
        """Record ``TimerFired`` for up to ``limit`` due timers (each exactly once)."""
        fired = await self._run(_fire_due_timers, now, limit)
        if fired:
            self.wakeup.notify()
        return fired

    # ---- snapshots ----------------------------------------------------------------------

    async def save_snapshot(self, snapshot: Snapshot, *, keep: int) -> None:
        """Keep ``snapshot`` and prune its run to the ``keep`` newest (see ``Store``)."""
        await self._write(save_snapshot_txn, snapshot, keep)

    async def find_snapshot(self, tenant: str, workflow_id: str, run_id: str, *,
                            seq: int | None = None, time: float | None = None) -> Snapshot | None:
        """The run's newest snapshot at or before ``seq`` and ``time``."""
        return await self._run(find_snapshot, (tenant, workflow_id, run_id), seq, time)

    async def pending_work(self, tenant: str,
                           workflow_id: str) -> tuple[list[ActionTask], list[TimerRecord]]:
        """The execution's action tasks and timers that have not finished."""
        return await self._run(_in_read_transaction, _pending_work_txn, tenant, workflow_id)

    async def next_wakeup(self, *, now: float) -> float | None:
        """The earliest time a timer, a delayed task or a schedule becomes due (None if nothing
        waits)."""
        return await self._run(_scalar, sql.NEXT_WAKEUP, ())

    async def close(self) -> None:
        """Close the connection and stop the store's thread."""
        if self._closed:
            return
        await self.wakeup.close()
        self._closed = True
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._conn.close)
        finally:
            self._executor.shutdown(wait=False)


# ---- opening and migrations (run on the store's thread) -------------------------------------


async def migrate(url: str) -> int:
    """Apply the pending migrations of the file ``url`` names; return its schema version."""
    store = await SQLiteStore.open(url)  # opening migrates
    try:
        version: int = await store._run(_scalar, sql.SELECT_SCHEMA_VERSION, ())
    finally:
        await store.close()
    return version


def _path_from_url(url: str) -> str:
    if not url.lower().startswith(_URL_PREFIX) or len(url) == len(_URL_PREFIX):
        raise ValueError(f"bad SQLite URL {url!r}: use sqlite:///relative/path.db "
                         "or sqlite:////absolute/path.db")
    return url[len(_URL_PREFIX):]


def _unavailable(url: str, exc: BaseException) -> StoreUnavailableError:
    return StoreUnavailableError(f"the SQLite store {url!r} failed: {exc}", url=url)


def _connect(url: str, path: str) -> sqlite3.Connection:
    """Open the file in WAL mode and bring its schema up to date."""
    directory = os.path.dirname(os.path.abspath(path))
    if path != ":memory:" and not os.path.isdir(directory):
        raise StoreUnavailableError(
            f"cannot open the SQLite store {url!r}: directory {directory!r} does not exist "
            "(create it first)", url=url) from FileNotFoundError(directory)
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None,
                           check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
        _use_wal(conn)
        conn.execute("PRAGMA synchronous = NORMAL")
        _in_transaction(conn, _migrate_txn, url)
    except BaseException:
        conn.close()
        raise
    return conn


def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch the file to WAL mode. The switch needs the file to itself and SQLite does not
    wait for that (no busy handler): processes opening a new file at once retry it."""
    deadline = time.monotonic() + BUSY_TIMEOUT
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _migrate_txn(conn: sqlite3.Connection, url: str) -> None:
    """Apply the migrations newer than the file's ``schema_version`` (under the write lock)."""
    conn.execute(sql.CREATE_SCHEMA_VERSION)
    current = conn.execute(sql.SELECT_SCHEMA_VERSION).fetchone()[0]
    migrations = migration_files(__package__)
    if current > migrations[-1][0]:
        raise StoreUnavailableError(
            f"the SQLite store {url!r} has schema version {current}, newer than this version "
            f"of durable knows ({migrations[-1][0]}): upgrade durable", url=url)
    for version, name, script in migrations:
        if version > current:
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute(sql.INSERT_SCHEMA_VERSION, (version, name, time.time()))


def _statements(script: str) -> list[str]:
    """Split a SQL script into statements (``executescript`` would commit our transaction)."""
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    return statements


# ---- transactions and small helpers (run on the store's thread) -----------------------------


def _in_transaction(conn: sqlite3.Connection, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(conn, *args)`` in one write transaction; roll back if it raises."""
    return _transaction(conn, "BEGIN IMMEDIATE", fn, args)


def _in_read_transaction(conn: sqlite3.Connection, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(conn, *args)`` in one read transaction (one consistent snapshot)."""
    return _transaction(conn, "BEGIN", fn, args)


def _transaction(conn: sqlite3.Connection, begin: str, fn: Callable[..., T], args: Row) -> T:
    conn.execute(begin)
    try:
        result = fn(conn, *args)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result


def _changed(conn: sqlite3.Connection, statement: str, params: Row) -> bool:
    return conn.execute(statement, params).rowcount > 0


def _scalar(conn: sqlite3.Connection, statement: str, params: Row) -> Any:
    return conn.execute(statement, params).fetchone()[0]


def _record(row: Row) -> ExecutionRecord:
    (tenant, workflow_id, run_id, workflow, version, status, created_at, updated_at, last_seq,
     state, data, result, error, task_error) = row
    return ExecutionRecord(tenant, workflow_id, run_id, workflow, version, status, created_at,
                           updated_at, last_seq, state, _decode_dict(data), _decode_any(result),
                           None if error is None else _decode_error(error), task_error)


def _action(row: Row, reclaimed: bool = False) -> ActionTask:
    tenant, workflow_id, run_id, cmd, name, args, kwargs, attempt, *rest = row
    return ActionTask(tenant, workflow_id, run_id, cmd, name, _decode_list(args),
                      _decode_dict(kwargs), attempt + bool(reclaimed), *rest)


def _action_key(task: ActionTask) -> Row:
    return (task.tenant, task.workflow_id, task.run_id, task.cmd)


# ---- executions and history -----------------------------------------------------------------


def _get_execution(conn: sqlite3.Connection, tenant: str,
                   workflow_id: str) -> ExecutionRecord | None:
    row = conn.execute(sql.SELECT_EXECUTION, (tenant, workflow_id)).fetchone()
    return None if row is None else _record(row)


def _list_executions(conn: sqlite3.Connection, tenant: str | None, status: str | None,
                     limit: int) -> list[ExecutionRecord]:
    statement = sql.LIST_ALL_EXECUTIONS if tenant is None else sql.LIST_TENANT_EXECUTIONS
    return [_record(row) for row in conn.execute(statement, (tenant, status, limit))]


def _scan_executions(conn: sqlite3.Connection, params: tuple[Any, ...]) -> list[ExecutionRecord]:
    return [_record(row) for row in conn.execute(sql.SCAN_EXECUTIONS, params)]


def _read_data_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA data_version").fetchone()[0])


def _read_history(conn: sqlite3.Connection, tenant: str, workflow_id: str, run_id: str | None,
                  after_seq: int, limit: int = -1) -> list[Event]:
    rows = conn.execute(sql.SELECT_EVENTS,
                        (tenant, workflow_id, run_id, after_seq, limit)).fetchall()
    return [decode_event(body) for (body,) in rows]


def _create_txn(conn: sqlite3.Connection, started: WorkflowStarted, now: float,
                lease_to: tuple[str, float] | None = None) -> tuple[ExecutionRecord, bool]:
    existing = _get_execution(conn, started.tenant, started.workflow_id)
    if existing is not None:
        return existing, False
    key = (started.tenant, started.workflow_id)
    conn.execute(sql.INSERT_EXECUTION, (*key, started.run_id, started.workflow, started.version,
                                        "running", now, now, 1, None, _encode({}), _encode(None),
                                        None, None))
    _begin_run_txn(conn, started, now)
    if lease_to is not None:
        conn.execute(sql.LEASE_WORKFLOW_TASK, (*lease_to, *key))
    return ExecutionRecord(*key, started.run_id, started.workflow, started.version, "running",
                           now, now, 1), True


def _begin_run_txn(conn: sqlite3.Connection, started: WorkflowStarted, now: float) -> None:
    """Write a run's ``WorkflowStarted`` (seq 1) and make the execution runnable."""
    key = (started.tenant, started.workflow_id)
    conn.execute(sql.INSERT_EVENT, (*key, started.run_id, 1, None,
                                    encode_event(replace(started, seq=1, time=now))))
    conn.execute(sql.UPSERT_WORKFLOW_TASK, (*key, started.workflow, now))


def _append_txn(conn: sqlite3.Connection, tenant: str, workflow_id: str, event: Event,
                dedup: str | None, now: float, run_id: str | None = None) -> int | None:
    """Append an input at the next seq (the caller holds the write lock).

    With ``run_id``, only while that is the execution's current run.
    """
    head = conn.execute(sql.SELECT_HEAD, (tenant, workflow_id)).fetchone()
    if head is None:
        raise WorkflowNotFoundError(f"no execution {workflow_id!r} in tenant {tenant!r}",
                                    workflow_id=workflow_id, tenant=tenant)
    current_run, workflow, status, last_seq = head
    if status in TERMINAL_STATUSES or (run_id is not None and run_id != current_run):
        return None
    seq: int = last_seq + 1
    body = encode_event(replace(event, seq=seq, time=now))
    if conn.execute(sql.INSERT_INPUT, (tenant, workflow_id, current_run, seq, dedup,
                                       body)).rowcount == 0:
        return None  # the dedup key was seen before
    conn.execute(sql.ADVANCE_EXECUTION, (seq, now, tenant, workflow_id))
    conn.execute(sql.UPSERT_WORKFLOW_TASK, (tenant, workflow_id, workflow, now))
    return seq


# ---- workflow tasks -------------------------------------------------------------------------


def _finish_txn(conn: sqlite3.Connection, task: WorkflowTask, owner: str, expected_seq: int,
                replies: Sequence[Reply]) -> bool:
    key = (task.tenant, task.workflow_id)
    head = conn.execute(sql.SELECT_COMMIT_HEAD, key).fetchone()
    if head is None or head[1] != expected_seq - 1 or head[2] != owner:
        return False
    conn.execute(sql.DELETE_WORKFLOW_TASK, key)
    answer_txn(conn, task.tenant, task.workflow_id, replies)
    return True


def _commit_txn(conn: sqlite3.Connection, task: WorkflowTask, commit: WorkflowCommit) -> bool:
    key = (task.tenant, task.workflow_id)
    head = conn.execute(sql.SELECT_COMMIT_HEAD, key).fetchone()
    if head is None or head[1] != commit.expected_seq - 1 or head[2] != commit.owner:
        return False
    run, update, now = (*key, head[0]), commit.update, commit.now
    conn.executemany(sql.INSERT_EVENT, [(*run, e.seq, None, encode_event(e))
                                        for e in commit.events])
    conn.execute(sql.DELETE_WORKFLOW_TASK, key)
    if update.status in TERMINAL_STATUSES:
        _drop_run_work_txn(conn, run)
    else:
        _schedule_txn(conn, run, commit)
    error = None if update.error is None else _encode(update.error)
    conn.execute(sql.UPDATE_EXECUTION, (commit.expected_seq + len(commit.events) - 1, now,
                                        update.status, update.state, _encode(update.data),
                                        _encode(update.result), error, *key))
    for start in commit.starts:
        _start_txn(conn, run, start, now)
    for signal in commit.signals:
        _signal_txn(conn, signal, now)
    if commit.replies:
        answer_txn(conn, task.tenant, task.workflow_id, commit.replies)
    return True


def _drop_run_work_txn(conn: sqlite3.Connection, run: Row) -> None:
    conn.execute(sql.DELETE_RUN_ACTIONS, run)
    conn.execute(sql.DELETE_RUN_TIMERS, run)


def _start_txn(conn: sqlite3.Connection, run: Row, start: Start, now: float) -> None:
    """A commit's start: the committer's next run, or a new execution (see ``Store``)."""
    started = start.started
    if (started.tenant, started.workflow_id) == run[:2]:
        _drop_run_work_txn(conn, run)
        conn.execute(sql.NEW_RUN, (started.run_id, started.workflow, started.version, now,
                                   _encode({}), _encode(None), *run[:2]))
        _begin_run_txn(conn, started, now)
        return
    _, created = _create_txn(conn, started, now)
    feedback = start.on_started if created else start.on_exists
    if feedback is not None:
        _append_txn(conn, run[0], run[1], feedback, None, now)


def _signal_txn(conn: sqlite3.Connection, signal: Signal, now: float) -> None:
    try:
        _append_txn(conn, signal.tenant, signal.workflow_id, signal.event, signal.dedup, now,
                    signal.run_id)
    except WorkflowNotFoundError:
        pass  # skipped, as the protocol says


def _schedule_txn(conn: sqlite3.Connection, run: Row, commit: WorkflowCommit) -> None:
    """Write a commit's new action tasks and timers and drop the ones it cancelled.

    The new action tasks count as dispatched ``now``: the committing worker publishes them.
    """
    if commit.actions:
        conn.executemany(sql.UPSERT_ACTION, [
            (*run, a.cmd, a.name, _encode(a.args), _encode(a.kwargs), a.attempt, a.visible_at,
             a.last_error, commit.now) for a in commit.actions])
    if commit.timers:
        conn.executemany(sql.UPSERT_TIMER, [(*run, t.cmd, t.fire_at) for t in commit.timers])
    if commit.cancelled_timers:
        conn.executemany(sql.DELETE_TIMER, [(*run, cmd) for cmd in commit.cancelled_timers])
    if commit.cancelled_actions:
        conn.executemany(sql.DELETE_ACTION, [(*run, cmd) for cmd in commit.cancelled_actions])


def _claim_workflow_tasks(conn: sqlite3.Connection, query: Row, owner: str,
                          until: float) -> list[WorkflowTask]:
    if not conn.execute(sql.SELECT_DUE_WORKFLOW_TASKS, query).fetchall():
        return []  # nothing due: do not take the write lock (idle pollers stay cheap)
    return _in_transaction(conn, _claim_workflow_txn, query, owner, until)


def _claim_workflow_txn(conn: sqlite3.Connection, query: Row, owner: str,
                        until: float) -> list[WorkflowTask]:
    rows = conn.execute(sql.SELECT_DUE_WORKFLOW_TASKS, query).fetchall()
    conn.executemany(sql.LEASE_WORKFLOW_TASK, [(owner, until, row[0], row[1]) for row in rows])
    return [WorkflowTask(t, w, name, attempt + 1, requested=bool(requested))
            for t, w, name, attempt, requested in rows]


def _release_txn(conn: sqlite3.Connection, task: WorkflowTask, owner: str, visible_at: float,
                 error: str | None) -> None:
    key = (task.tenant, task.workflow_id)
    released = _changed(conn, sql.RELEASE_WORKFLOW_TASK, (visible_at, *key, owner))
    if released and error is not None:
        conn.execute(sql.SET_TASK_ERROR, (error, *key))


# ---- action tasks and timers ----------------------------------------------------------------


def _claim_action_tasks(conn: sqlite3.Connection, query: Row, owner: str,
                        until: float) -> list[ActionTask]:
    if not conn.execute(sql.SELECT_DUE_ACTIONS, query).fetchall():
        return []  # nothing due: do not take the write lock
    return _in_transaction(conn, _claim_action_txn, query, owner, until)


def _claim_action_txn(conn: sqlite3.Connection, query: Row, owner: str,
                      until: float) -> list[ActionTask]:
    # A task whose lease expired was claimed before: its worker died, so that was an attempt.
    tasks = [_action(row[:-1], reclaimed=row[-1])
             for row in conn.execute(sql.SELECT_DUE_ACTIONS, query).fetchall()]
    conn.executemany(sql.LEASE_ACTION, [(owner, until, t.attempt, *_action_key(t)) for t in tasks])
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
                claimed_workflows.append(WorkflowTask(ref.tenant, ref.workflow_id, found[0],
                                                      found[1] + 1, requested=bool(found[2])))
            continue
        key = (ref.tenant, ref.workflow_id, ref.run_id, ref.cmd)
        hit = conn.execute(sql.SELECT_HINTED_ACTION, (*key, now)).fetchone()
        if hit is not None and hit[4] in actions:
            task = _action(hit[:-1], reclaimed=hit[-1])
            conn.execute(sql.LEASE_ACTION, (owner, until, task.attempt, *key))
            claimed_actions.append(task)
    return claimed_workflows, claimed_actions


def _dispatch_due(conn: sqlite3.Connection, query: Row) -> list[TaskRef]:
    if not (conn.execute(sql.SELECT_UNDISPATCHED_WORKFLOW_TASKS, query).fetchone()
            or conn.execute(sql.SELECT_UNDISPATCHED_ACTIONS, query).fetchone()):
        return []  # nothing to announce: do not take the write lock
    return _in_transaction(conn, _dispatch_due_txn, query)


def _dispatch_due_txn(conn: sqlite3.Connection, query: Row) -> list[TaskRef]:
    """Mark up to ``limit`` undispatched claimable tasks dispatched now; return their hints."""
    _, now, limit = query
    rows = conn.execute(sql.SELECT_UNDISPATCHED_WORKFLOW_TASKS, query).fetchall()
    conn.executemany(sql.MARK_WORKFLOW_TASK_DISPATCHED, [(now, *row) for row in rows])
    refs = [workflow_ref(tenant, workflow_id) for tenant, workflow_id in rows]
    if len(refs) < limit:
        actions = conn.execute(sql.SELECT_UNDISPATCHED_ACTIONS, query[:2] + (limit - len(refs),))
        for tenant, workflow_id, name, run_id, cmd in actions.fetchall():
            conn.execute(sql.MARK_ACTION_DISPATCHED, (now, tenant, workflow_id, run_id, cmd))
            refs.append(TaskRef("a", tenant, workflow_id, name, run_id, cmd))
    return refs


def _complete_action_txn(conn: sqlite3.Connection, task: ActionTask, event: Event,
                         now: float) -> bool:
    conn.execute(sql.DELETE_ACTION, _action_key(task))
    try:
        seq = _append_txn(conn, task.tenant, task.workflow_id, event,
                          f"a{task.run_id}/{task.cmd}", now, task.run_id)
    except WorkflowNotFoundError:
        return False
    return seq is not None


def _fire_due_timers(conn: sqlite3.Connection, now: float, limit: int) -> list[TaskRef]:
    if not conn.execute(sql.SELECT_DUE_TIMERS, (now, limit)).fetchall():
        return []  # nothing due: do not take the write lock
    return _in_transaction(conn, _fire_txn, now, limit)


def _fire_txn(conn: sqlite3.Connection, now: float, limit: int) -> list[TaskRef]:
    """Delete each due timer and record its ``TimerFired`` in the same transaction."""
    due = conn.execute(sql.SELECT_DUE_TIMERS, (now, limit)).fetchall()
    for tenant, workflow_id, run_id, cmd in due:
        conn.execute(sql.DELETE_TIMER, (tenant, workflow_id, run_id, cmd))
        _append_txn(conn, tenant, workflow_id, TimerFired(0, now, cmd), f"t{run_id}/{cmd}", now)
    return [workflow_ref(tenant, workflow_id) for tenant, workflow_id, _, _ in due]


def _pending_work_txn(conn: sqlite3.Connection, tenant: str,
                      workflow_id: str) -> tuple[list[ActionTask], list[TimerRecord]]:
    key = (tenant, workflow_id)
    actions = [_action(row) for row in conn.execute(sql.PENDING_ACTIONS, key)]
    timers = [TimerRecord(*row) for row in conn.execute(sql.PENDING_TIMERS, key)]
    return actions, timers

