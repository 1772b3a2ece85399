"""The PostgreSQL store's worker liveness (``WorkerStore``): an advisory lock per worker.

A worker opens a connection of its own and takes a session-level advisory lock on it, in
durable's namespace (``pg_advisory_lock(NAMESPACE, key)`` with a random key no other live
worker holds); its heartbeats go through that connection too. The server drops the lock the
moment the connection's socket closes, i.e. when the worker's process dies. Peers find dead
workers with one read of ``workers`` against ``pg_locks`` (which sees every session's locks),
then release each in a transaction of its own, unless it sent a heartbeat since. A host that
vanishes leaves a half-open connection whose lock may be held for minutes: its heartbeat
ages past the timeout instead.
"""

from __future__ import annotations

import random
from time import monotonic
from collections.abc import Collection
from typing import Final

import asyncpg

from .._liveness import Released, WorkerRecord
from .._records import TaskRef, workflow_ref
from ._connection import PostgresBase
from ._schema import Target, typed_error

__all__ = ["PostgresWorkers"]

NAMESPACE: Final = 0x64757261  # 'dura': the first key of durable's advisory locks

_TRY_LOCK = "SELECT pg_try_advisory_lock($1::int4, $2::int4)"
# $1 id, $2 host, $3 pid, $4 lock key, $5 the store's time given (NULL: the server's clock)
_REGISTER = (
    "INSERT INTO workers (id, host, pid, lock_key, started_at, heartbeat_at) "
    "VALUES ($1, $2, $3, $4, durable_store_time($5), durable_store_time($5)) "
    "ON CONFLICT (id) DO UPDATE SET lock_key = excluded.lock_key, "
    "heartbeat_at = excluded.heartbeat_at")
_SELECT_WORKERS = "SELECT id, host, pid, started_at, heartbeat_at FROM workers ORDER BY id"
# $1 the store's time given (NULL: the server's clock), $2 timeout, $3 the caller's own workers
_SELECT_DEAD = f"""
SELECT w.id, w.heartbeat_at FROM workers AS w
WHERE NOT w.id = ANY($3::text[])
  AND (w.heartbeat_at < durable_store_time($1) - $2 OR NOT EXISTS (
       SELECT 1 FROM pg_locks AS l
       WHERE l.locktype = 'advisory' AND l.granted AND l.classid = {NAMESPACE}::oid
         AND l.objid = w.lock_key::oid AND l.objsubid = 2
         AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())))
"""
_DELETE_WORKER = "DELETE FROM workers WHERE id = $1 AND ($2::float8 IS NULL OR heartbeat_at = $2)"
# A statement a worker's process sent before it died can still commit after its release (the
# server finishes it, then finds the client gone): what such a commit leased to the worker is
# released again at these times (seconds) after the first release, unless it registered anew.
# The statements serve both: they run after the worker's row is deleted.
_LATE_LOOKS: Final = (0.25, 1.0, 3.0)
_UNREGISTERED = "NOT EXISTS (SELECT 1 FROM workers WHERE id = $1)"
_RELEASE_WORKFLOW_TASKS = (
    "UPDATE workflow_tasks SET lease_until = 0, dispatched_at = $2 WHERE owner = $1 "
    f"AND lease_until > 0 AND {_UNREGISTERED} RETURNING tenant, workflow_id")
_RELEASE_ACTIONS = (
    "UPDATE action_tasks SET lease_until = 0, dispatched_at = $2 WHERE owner = $1 "
    f"AND lease_until > 0 AND {_UNREGISTERED} RETURNING tenant, workflow_id, name, run_id, cmd")
# its slots for inline attempts
_RELEASE_HOLDS = f"DELETE FROM flow_holds WHERE owner = $1 AND {_UNREGISTERED}"


class PostgresWorkers(PostgresBase):
    """Registered workers in the ``workers`` table, each holding an advisory lock."""

    def __init__(self, url: str, pool: asyncpg.Pool, target: Target) -> None:
        super().__init__(url, pool, target)
        self._locks: dict[str, tuple[asyncpg.Connection, int]] = {}  # identity -> (conn, key)
        self._late: dict[str, list[float]] = {}  # a released worker -> its late looks (monotonic)

    async def register_worker(self, identity: str, *, host: str, pid: int, now: float) -> None:
        """Take the worker's lock (again, if its connection was lost) and record it alive."""
        conn, key = await self._lock_connection(identity)
        try:
            await conn.execute(_REGISTER, identity, host, pid, key, self._store_time(now))
        except Exception as exc:  # the connection is suspect: take the lock anew next time
            self._drop_lock(identity)
            raise (typed_error(self.url, exc) or exc) from exc

    async def unregister_worker(self, identity: str, *, now: float) -> list[TaskRef]:
        """Delete the worker's record and release its tasks, then drop its lock."""
        try:
            refs = await self._release(identity, None, now)
        finally:
            self._drop_lock(identity)
        return refs or []

    async def list_workers(self) -> list[WorkerRecord]:
        """The registered workers, by identity."""
        return [WorkerRecord(*row) for row in await self._fetch(_SELECT_WORKERS)]

    async def release_dead_workers(self, *, timeout: float, now: float,
                                   alive: Collection[str] = ()) -> Released:
        """Release the workers whose lock is not held or whose heartbeat is too old."""
        dead = await self._fetch(_SELECT_DEAD, self._store_time(now), timeout, list(alive))
        released = Released([], [])
        for identity, heartbeat_at in dead:
            refs = await self._release(identity, heartbeat_at, now)
            if refs is not None:
                released.workers.append(identity)
                released.refs.extend(refs)
                self._late[identity] = [monotonic() + after for after in _LATE_LOOKS]
        for identity, looks in list(self._late.items()):
            if looks[0] <= monotonic():
                del looks[0]
                if not looks:
                    del self._late[identity]
                released.refs.extend(await self._release(identity, None, now, late=True) or [])
        if released.refs:
            self.wakeup.notify()
        return released

    async def _release(self, identity: str, heartbeat_at: float | None, now: float, *,
                       late: bool = False) -> list[TaskRef] | None:
        """Delete the worker (if its heartbeat is still ``heartbeat_at``) and expire the
        leases of its tasks, in one transaction; their hints, or None if it was not deleted.
        ``late``: only expire what late commits leased to it since (``_LATE_LOOKS``)."""
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                if not late and await conn.execute(_DELETE_WORKER, identity, heartbeat_at) \
                        == "DELETE 0" and heartbeat_at is not None:
                    return None
                flows = await conn.fetch(_RELEASE_WORKFLOW_TASKS, identity, now)
                actions = await conn.fetch(_RELEASE_ACTIONS, identity, now)
                await conn.execute(_RELEASE_HOLDS, identity)
        except Exception as exc:
            raise await self._mapped(exc) from exc
        return [workflow_ref(*row) for row in flows] + [TaskRef("a", *row) for row in actions]

    async def _lock_connection(self, identity: str) -> tuple[asyncpg.Connection, int]:
        held = self._locks.get(identity)
        if held is not None and not held[0].is_closed():
            return held
        self._drop_lock(identity)
        try:
            conn = await asyncpg.connect(self._target.dsn, timeout=5.0,
                                         server_settings=self._target.server_settings)
        except Exception as exc:
            raise (typed_error(self.url, exc) or exc) from exc
        try:
            key = random.randrange(1, 2**31)
            while not await conn.fetchval(_TRY_LOCK, NAMESPACE, key):
                key = random.randrange(1, 2**31)  # another worker's: pick again
        except Exception as exc:
            conn.terminate()
            raise (typed_error(self.url, exc) or exc) from exc
        self._locks[identity] = (conn, key)
        return conn, key

    def _drop_lock(self, identity: str) -> None:
        held = self._locks.pop(identity, None)
        if held is not None:
            held[0].terminate()  # closing the session drops its lock

    async def close(self) -> None:
        """Drop the locks of workers that did not unregister, then close the pool."""
        for identity in list(self._locks):
            self._drop_lock(identity)
        await super().close()
