"""Stores: where executions, histories and work live. ``open_store(url)`` picks one by URL.

``_base`` is the ``Store`` protocol, split into the roles its callers use; ``_records`` the
records it trades in (``WorkflowCommit``: what one workflow task writes); ``_commit`` the one
``commit_workflow_task`` and the wake-ups after it (``_wakeup``); ``_integrity`` the checksums
chained through each run's history, checked on every read. The stores, ``memory``,
``sqlite`` and ``postgres``, are packages with one module per role over a shared base, held
to one conformance suite.
"""

from __future__ import annotations

from ..errors import InvalidArgumentError
from ._base import (
    ExecutionStore, RequestStore, ScheduleStore, SnapshotStore, Store, TaskStore, TimerStore,
)
from ._records import (
    FINISHED_REQUESTS, TERMINAL_STATUSES, ActionTask, ExecutionRecord, ExecutionUpdate, Outcome,
    Reply, Request, RunCheck, Settled, Signal, Snapshot, Start, TaskRef, TimerRecord,
    WorkflowCommit, WorkflowTask, action_dedup, action_ref, workflow_ref,
)
from ._liveness import HeartbeatStore, Released, WorkerRecord, WorkerStore
from ._retention import RetentionSettings, RetentionStore, Sweep
from ._store_clock import CALLER_CLOCK, OWN_CLOCK, StoreClock, check_store_clock
from ._wakeup import Wakeup

__all__ = [
    "CALLER_CLOCK",
    "FINISHED_REQUESTS",
    "HeartbeatStore",
    "OWN_CLOCK",
    "TERMINAL_STATUSES",
    "ActionTask",
    "ExecutionRecord",
    "ExecutionStore",
    "ExecutionUpdate",
    "Outcome",
    "Released",
    "Reply",
    "RetentionSettings",
    "RetentionStore",
    "Request",
    "RequestStore",
    "RunCheck",
    "ScheduleStore",
    "Settled",
    "Signal",
    "Snapshot",
    "SnapshotStore",
    "Start",
    "Store",
    "StoreClock",
    "Sweep",
    "TaskRef",
    "TaskStore",
    "TimerRecord",
    "TimerStore",
    "Wakeup",
    "WorkerRecord",
    "WorkerStore",
    "WorkflowCommit",
    "WorkflowTask",
    "action_dedup",
    "action_ref",
    "migrate_store",
    "open_store",
    "workflow_ref",
]


_POSTGRES_SCHEMES = ("postgresql", "postgres")


async def open_store(url: str, *, clock: StoreClock = OWN_CLOCK) -> Store:
    """Open the store ``url`` names: ``memory://``, ``sqlite:///path.db``, ``postgresql://…``.

    Opening a SQLite or PostgreSQL store applies its pending migrations. ``clock`` is the
    clock its timers are due on (``_store_clock``): by default the store's own, i.e. the
    database server's for PostgreSQL.
    """
    scheme = _scheme(url)
    clock = check_store_clock(clock)
    store: Store
    if scheme == "memory":
        from .memory import MemoryStore

        return MemoryStore(url, clock=clock)
    if scheme == "sqlite":
        from .sqlite import SQLiteStore

        store = await SQLiteStore.open(url)
    elif scheme in _POSTGRES_SCHEMES:
        from .postgres import PostgresStore

        store = await PostgresStore.open(url)
    else:
        raise _unsupported(url)
    store.clock = clock
    return store


async def migrate_store(url: str) -> int:
    """Apply the pending migrations of the store at ``url``; return its schema version.

    Safe to run from several processes at once. A ``memory://`` store has no schema (0).
    """
    scheme = _scheme(url)
    if scheme == "memory":
        return 0
    if scheme == "sqlite":
        from .sqlite import migrate as migrate_sqlite

        return await migrate_sqlite(url)
    if scheme in _POSTGRES_SCHEMES:
        from .postgres import migrate as migrate_postgres

        return await migrate_postgres(url)
    raise _unsupported(url)


def _scheme(url: str) -> str:
    return url.split(":", 1)[0].lower()


def _unsupported(url: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"unsupported store URL {url.split('@')[-1]!r}: use memory://, "
                                "sqlite:///path.db, sqlite:////absolute/path.db or postgresql://…")
