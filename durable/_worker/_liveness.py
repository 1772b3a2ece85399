"""Liveness: a worker registers itself, and every worker and server releases the tasks of
workers that died, so that a crash costs a fraction of a second rather than a lease.

How it holds (see ``durable._stores._liveness`` for what each store does):

* a worker registers before it claims much and repeats it as a heartbeat every fifth of the
  liveness ``timeout``; the store takes a lock for it that the operating system releases
  when its process dies (an advisory lock on its own PostgreSQL connection, an ``flock`` on
  SQLite);
* every ``CHECK_EVERY`` seconds each worker (and ``durable server``) asks the store to release
  dead workers: those whose lock is free (the process died: found within ``CHECK_EVERY``) or
  whose heartbeat is older than ``timeout`` (the host vanished). Their tasks' leases expire at
  once; their hints are published, and the dispatcher stops routing to them (``forget_worker``);
* an application that restarts on its SQLite file finds its previous process's lock free at
  its first check, before its first poll has waited, and resumes its executions at once;
* a worker that stops releases what it still holds (``unregister_worker``).

Leases remain for a worker that hangs while its process and heartbeat live on. Releasing a
live worker by mistake (its heartbeat stalled) costs nothing but a repeated attempt: the
store's compare-and-set commits let only one holder record an outcome.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, Collection
from typing import Final

from .._clock import Clock
from .._dispatch import Dispatcher
from .._stores import Store, TaskRef

__all__ = ["CHECK_EVERY", "LIVENESS_TIMEOUT", "Liveness", "release_dead_workers"]

logger = logging.getLogger("durable.worker")

LIVENESS_TIMEOUT: Final = 5.0  # seconds without a heartbeat before a worker counts as dead
CHECK_EVERY: Final = 0.2  # seconds between looks for dead workers
_HEARTBEATS: Final = 5  # heartbeats per liveness timeout
_STOP_TIMEOUT: Final = 5.0  # seconds a stopping worker spends unregistering, at most


async def release_dead_workers(store: Store, dispatcher: Dispatcher, clock: Clock, *,
                               timeout: float, alive: Collection[str] = ()) -> int:
    """Release the tasks of dead workers (see the module), publish their hints and tell the
    dispatcher; how many workers were found dead."""
    released = await store.release_dead_workers(timeout=timeout, now=clock(), alive=alive)
    for owner in released.workers:
        logger.warning("worker %s stopped without finishing its tasks: they are released",
                       owner)
        try:
            await dispatcher.forget_worker(owner)
        except Exception:  # the outbox announces the hints it held, a little later
            logger.warning("could not re-route the hints of worker %s", owner, exc_info=True)
    await _publish(dispatcher, released.refs)
    return len(released.workers)


async def _publish(dispatcher: Dispatcher, refs: list[TaskRef]) -> None:
    if not refs:
        return
    try:
        await dispatcher.publish(refs)
    except Exception:  # the outbox announces them again
        logger.warning("could not announce %d released task(s)", len(refs), exc_info=True)


class Liveness:
    """One worker's registration, heartbeat and watch over its peers; ``alive()`` names the
    workers of this process that must not be taken for dead (this one, its siblings)."""

    def __init__(self, store: Store, dispatcher: Callable[[], Dispatcher], clock: Clock,
                 identity: str, *, timeout: float, alive: Callable[[], list[str]]) -> None:
        self.store = store
        self.dispatcher = dispatcher
        self.clock = clock
        self.identity = identity
        self.timeout = timeout
        self.alive = alive
        self._host = socket.gethostname()
        self._failing = False

    async def run(self, stopping: asyncio.Event) -> None:
        """Heartbeat and release dead peers until ``stopping`` is set; store failures are
        logged and retried (the worker's own polling reports the outage)."""
        next_beat = 0.0
        while not stopping.is_set():
            try:
                if time.monotonic() >= next_beat:
                    await self.beat()
                    next_beat = time.monotonic() + self.timeout / _HEARTBEATS
                await self.release_dead()
                self._failing = False
            except Exception as exc:
                if not self._failing:
                    logger.warning("worker %s: liveness check failed (%s)", self.identity, exc)
                self._failing = True
            try:
                async with asyncio.timeout(CHECK_EVERY):
                    await stopping.wait()
            except TimeoutError:
                pass

    async def beat(self) -> None:
        """Register this worker, or refresh its heartbeat."""
        await self.store.register_worker(self.identity, host=self._host, pid=os.getpid(),
                                         now=self.clock())

    async def release_dead(self) -> int:
        """Release dead peers' tasks (never those of this process's running workers)."""
        return await release_dead_workers(self.store, self.dispatcher(), self.clock,
                                          timeout=self.timeout,
                                          alive=[self.identity, *self.alive()])

    async def stop(self) -> None:
        """Unregister: whatever this worker still holds is released, and hints are no longer
        routed to it."""
        dispatcher = self.dispatcher()
        try:
            async with asyncio.timeout(_STOP_TIMEOUT):  # a stuck store never holds up an exit
                refs = await self.store.unregister_worker(self.identity, now=self.clock())
                await dispatcher.forget_worker(self.identity)
                await _publish(dispatcher, refs)
        except Exception as exc:
            logger.warning("worker %s: could not unregister (%s); its peers will release its "
                           "tasks", self.identity, type(exc).__name__ if not str(exc) else exc)
