"""Worker liveness (``WorkerStore``): which workers are alive, so that a dead one's tasks are
released at once rather than when their leases run out.

A lease alone makes a crashed worker's work wait for the lease (30 s by default). So each
worker also registers itself (``register_worker``, repeated as its heartbeat) while holding
something the operating system releases when its process dies:

* PostgreSQL: a session-level advisory lock on the worker's own connection; the server drops
  it as soon as the dead process's socket closes;
* SQLite: an ``flock`` on a lock file of its own beside the database file (every process that
  shares the file runs on this machine);
* memory: nothing (one process: its workers live and die with it).

Any worker or server calls ``release_dead_workers`` every fraction of a second: a worker whose
lock is free (its process died), or whose heartbeat is older than ``timeout`` on the store's
clock (its host vanished: the lock may be held by a half-open connection for minutes), is
deleted and the tasks leased to it have their leases expired, as if they had run out: the
next claim takes them over (an action's attempt counts as used, as after a lease expiry).
Leases still cover a worker that hangs while its process and heartbeat live on.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import NamedTuple, Protocol

import msgspec

from ._records import ActionTask, TaskRef

__all__ = ["HeartbeatStore", "Released", "WorkerRecord", "WorkerStore"]


class WorkerRecord(msgspec.Struct, frozen=True):
    """A registered worker: its identity (the owner its leases name), where it runs, and its
    registration and last heartbeat on the store's clock."""

    identity: str
    host: str
    pid: int
    started_at: float
    heartbeat_at: float


class Released(NamedTuple):
    """What ``release_dead_workers`` did: the dead workers and the hints of the tasks it made
    claimable (already marked dispatched: the caller publishes them)."""

    workers: list[str]
    refs: list[TaskRef]


class WorkerStore(Protocol):
    """Registered workers and the release of dead workers' tasks (see the module)."""

    async def register_worker(self, identity: str, *, host: str, pid: int, now: float) -> None:
        """Record ``identity`` as alive now (its heartbeat), first taking the lock that its
        process's death releases (again, if it was lost); repeat it as the heartbeat."""
        ...

    async def unregister_worker(self, identity: str, *, now: float) -> list[TaskRef]:
        """The worker stops: delete its record, drop its lock, and release the tasks still
        leased to it (their hints, to publish)."""
        ...

    async def list_workers(self) -> list[WorkerRecord]:
        """The registered workers, by identity."""
        ...

    async def release_dead_workers(self, *, timeout: float, now: float,
                                   alive: Collection[str] = ()) -> Released:
        """Delete the workers whose process died (their lock is free) or whose heartbeat is
        older than ``timeout`` seconds on the store's clock, except those in ``alive`` (the
        caller's own), and expire the leases of their tasks, marked dispatched at ``now``;
        concurrent callers release each worker once."""
        ...


class HeartbeatStore(Protocol):
    """Action heartbeats: the details an attempt reports (``action_info().heartbeat``), kept
    on its task for the attempts after it (retries, and takeovers after a crash)."""

    async def record_action_heartbeat(self, task: ActionTask, owner: str, details: bytes, *,
                                      lease: float, now: float) -> bool:
        """Keep ``details`` (MessagePack) on the task and its lease alive, while ``owner``
        holds it; False if the lease was lost."""
        ...

    async def action_heartbeat_details(self, task: ActionTask) -> bytes | None:
        """The details of the task's last recorded heartbeat (None: none, or no such task)."""
        ...
