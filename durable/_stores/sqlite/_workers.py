"""The SQLite store's worker liveness (``WorkerStore``): a lock file per worker.

Every process sharing the file runs on this machine, so a worker's liveness is an ``flock``
on a file of its own in the directory ``<database file>.workers``, held while its process
lives (the kernel drops it when the process dies, however it dies). A peer that can take the
lock knows the worker is dead. ``flock`` locks belong to the open file, not the process: a
peer in the worker's own process cannot take it either. The ``workers`` table says which lock
file is whose; a worker whose heartbeat is too old is dead too (it hung, or its lock file was
removed).
"""

from __future__ import annotations

import fcntl
import os
import socket
import sqlite3
import uuid
from collections.abc import Collection

from ..._lanes import FairExecutor
from .._liveness import Released, WorkerRecord
from .._records import TaskRef, workflow_ref
from ._connection import Row, SQLiteBase, in_transaction

__all__ = ["SQLiteWorkers"]

_REGISTER = (
    "INSERT INTO workers (id, host, pid, lock_file, started_at, heartbeat_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT (id) DO UPDATE SET "
    "lock_file = excluded.lock_file, heartbeat_at = excluded.heartbeat_at")
_SELECT_WORKERS = ("SELECT id, host, pid, started_at, heartbeat_at, lock_file FROM workers "
                   "ORDER BY id")
_DELETE_WORKER = "DELETE FROM workers WHERE id = ?1 AND heartbeat_at = ?2"
_RELEASE_WORKFLOW_TASKS = ("UPDATE workflow_tasks SET lease_until = 0, dispatched_at = ?1 "
                           "WHERE owner = ?2 RETURNING tenant, workflow_id")
_RELEASE_ACTIONS = ("UPDATE action_tasks SET lease_until = 0, dispatched_at = ?1 "
                    "WHERE owner = ?2 RETURNING tenant, workflow_id, name, run_id, cmd")


class SQLiteWorkers(SQLiteBase):
    """Registered workers in the ``workers`` table, each holding an ``flock``."""

    def __init__(self, url: str, executor: FairExecutor, conn: sqlite3.Connection) -> None:
        super().__init__(url, executor, conn)
        path = url[len("sqlite:///"):]
        self._lock_dir = None if path == ":memory:" else os.path.abspath(path) + ".workers"
        self._locks: dict[str, tuple[int, str]] = {}  # identity -> (open fd, lock file name)

    def _worker_time(self, now: float) -> float:
        store_now = self._store_time(now)
        return now if store_now is None else store_now

    async def register_worker(self, identity: str, *, host: str, pid: int, now: float) -> None:
        """Take the worker's file lock (once) and record it as alive now."""
        lock_file = await self._run(self._lock, identity)
        row = (identity, host, pid, lock_file, self._worker_time(now))
        await self._write(_register_txn, row)

    async def unregister_worker(self, identity: str, *, now: float) -> list[TaskRef]:
        """Delete the worker's record, release its tasks, then drop its lock."""
        refs = await self._write(_unregister_txn, identity, now)
        await self._run(self._unlock, identity)
        if refs:
            self.wakeup.notify()
        return refs

    async def list_workers(self) -> list[WorkerRecord]:
        """The registered workers, by identity."""
        rows = await self._run(_select_workers)
        return [WorkerRecord(*row[:5]) for row in rows]

    async def release_dead_workers(self, *, timeout: float, now: float,
                                   alive: Collection[str] = ()) -> Released:
        """Release the workers whose lock is free or whose heartbeat is too old."""
        oldest = self._worker_time(now) - timeout
        released = await self._run(_release_dead, self._lock_dir, oldest, now, frozenset(alive))
        if released.refs:
            self.wakeup.notify()
        return released

    def _lock(self, conn: sqlite3.Connection, identity: str) -> str | None:
        """On the store's thread: this worker's lock file, created and locked the first time."""
        held = self._locks.get(identity)
        if held is not None or self._lock_dir is None:
            return None if held is None else held[1]
        os.makedirs(self._lock_dir, exist_ok=True)
        name = f"{uuid.uuid4().hex}.lock"
        fd = os.open(os.path.join(self._lock_dir, name), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BaseException:
            os.close(fd)
            raise
        self._locks[identity] = (fd, name)
        return name

    def _unlock(self, conn: sqlite3.Connection, identity: str) -> None:
        held = self._locks.pop(identity, None)
        if held is not None and self._lock_dir is not None:
            _remove(os.path.join(self._lock_dir, held[1]))
            os.close(held[0])

    async def close(self) -> None:
        """Drop the locks of workers that did not unregister, then close the file."""
        for fd, _ in self._locks.values():
            os.close(fd)
        self._locks.clear()
        await super().close()


def _register_txn(conn: sqlite3.Connection, row: Row) -> None:
    conn.execute(_REGISTER, row)


def _select_workers(conn: sqlite3.Connection) -> list[Row]:
    return conn.execute(_SELECT_WORKERS).fetchall()


def _unregister_txn(conn: sqlite3.Connection, identity: str, now: float) -> list[TaskRef]:
    conn.execute("DELETE FROM workers WHERE id = ?", (identity,))
    return _release_tasks(conn, identity, now)


def _release_dead(conn: sqlite3.Connection, lock_dir: str | None, oldest: float, now: float,
                  alive: frozenset[str]) -> Released:
    """Find dead workers with a plain read (taking no write lock while all live), then delete
    each in one transaction with the release of its tasks, unless it sent a heartbeat since."""
    host = socket.gethostname()
    released = Released([], [])
    for identity, worker_host, _, _, heartbeat_at, lock_file in _select_workers(conn):
        path = None if lock_dir is None or lock_file is None or worker_host != host \
            else os.path.join(lock_dir, lock_file)
        gone = path is not None and not _locked(path)  # its process died
        if identity in alive or not (gone or heartbeat_at < oldest):
            continue
        refs = in_transaction(conn, _release_worker_txn, identity, heartbeat_at, now)
        if refs is None:
            continue
        released.workers.append(identity)
        released.refs.extend(refs)
        if gone and path is not None:
            _remove(path)
    return released


def _release_worker_txn(conn: sqlite3.Connection, identity: str, heartbeat_at: float,
                        now: float) -> list[TaskRef] | None:
    if conn.execute(_DELETE_WORKER, (identity, heartbeat_at)).rowcount == 0:
        return None  # another peer released it, or it sent a heartbeat since
    return _release_tasks(conn, identity, now)


def _release_tasks(conn: sqlite3.Connection, owner: str, now: float) -> list[TaskRef]:
    refs = [workflow_ref(*row) for row in conn.execute(_RELEASE_WORKFLOW_TASKS, (now, owner))]
    refs += [TaskRef("a", *row) for row in conn.execute(_RELEASE_ACTIONS, (now, owner))]
    conn.execute("DELETE FROM flow_holds WHERE owner = ?", (owner,))  # its inline slots
    return refs


def _locked(path: str) -> bool:
    """Whether a live process holds the lock on ``path`` (a missing file: nobody does)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
