"""``Worker``: polls the store for workflow tasks, action tasks and due timers, and runs them."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generator, Iterable

from .._definitions import action_definition, workflow_definition
from ._action_tasks import ActionTaskRunner
from ._workflow_tasks import InstanceCache, WorkflowTaskRunner

if TYPE_CHECKING:
    from .._client import Client

__all__ = ["Worker"]

logger = logging.getLogger("durable.worker")


class Worker:
    """Runs workflows and actions for a client's store.

    ``await worker.run()`` runs until cancelled or :meth:`shutdown`; ``async with
    Worker(...)`` runs it in the background for the block. ``concurrency`` bounds the tasks
    running at once; ``lease`` (seconds) is how long a claimed task stays invisible to other
    workers without a heartbeat, i.e. how soon a crashed worker's work is picked up again.
    """

    def __init__(self, client: Client, workflows: Iterable[Any] = (), actions: Iterable[Any] = (),
                 *, concurrency: int = 100, lease: float = 30.0, poll_interval: float = 0.2,
                 max_cached: int = 1000, identity: str | None = None) -> None:
        if concurrency < 1 or lease <= 0 or poll_interval <= 0:
            raise ValueError("concurrency >= 1, lease > 0 and poll_interval > 0 are required")
        self.client = client
        self.workflows = {d.name: d for d in map(workflow_definition, workflows)}
        self.actions = {d.name: d for d in map(action_definition, actions)}
        self.identity = identity or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.concurrency = concurrency
        self.lease = lease
        self.poll_interval = poll_interval
        self.cache = InstanceCache(max_cached)
        store = client.store
        self._workflow_runner = WorkflowTaskRunner(store, self.identity, self.workflows,
                                                   self.actions, self.cache)
        self._action_runner = ActionTaskRunner(store, self.identity, self.actions, lease)
        self._in_flight = 0
        self._stopping = asyncio.Event()
        self._background: asyncio.Task[None] | None = None

    # ---- lifecycle ----------------------------------------------------------------------

    async def run(self) -> None:
        """Poll and run work until :meth:`shutdown` is called or this task is cancelled."""
        self._stopping.clear()
        async with asyncio.TaskGroup() as group:
            try:
                failures = 0
                while not self._stopping.is_set():
                    seen = self.client.store.wakeup.generation
                    try:
                        if not await self._poll_once(group):
                            await self._idle(seen)
                        failures = 0
                    except Exception as exc:  # the store is down: back off and try again
                        failures += 1
                        delay = min(0.1 * 2 ** failures, 5.0)
                        logger.warning("worker %s: polling failed (%s); retrying in %.1fs",
                                       self.identity, exc, delay)
                        await asyncio.sleep(delay)

            finally:
                self.cache.clear()

    async def run_until_idle(self) -> None:
        """Run everything that is due now, and what it leads to, then return (tests, scripts)."""
        async with asyncio.TaskGroup() as group:
            while True:
                claimed = await self._poll_once(group)
                if not claimed and self._in_flight == 0:
                    return
                if not claimed:
                    await asyncio.sleep(0.001)

    def shutdown(self) -> None:
        """Stop claiming work; ``run()`` returns once the tasks in flight have finished."""
        self._stopping.set()

    async def __aenter__(self) -> Worker:
        self._background = asyncio.create_task(self.run(), name=f"durable worker {self.identity}")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.shutdown()
        if self._background is not None:
            await self._background

    def __await__(self) -> Generator[Any, None, None]:
        return self.run().__await__()

    # ---- polling ------------------------------------------------------------------------

    async def _idle(self, seen: int) -> None:
        store = self.client.store
        now = time.time()
        due = await store.next_wakeup(now=now)
        timeout = self.poll_interval if due is None else min(max(due - now, 0.0), self.poll_interval)
        waits = [asyncio.ensure_future(store.wakeup.wait(timeout, seen)),
                 asyncio.ensure_future(self._stopping.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for fut in waits:
                fut.cancel()

    async def _poll_once(self, group: asyncio.TaskGroup) -> int:
        """Fire due timers and start as much claimed work as there are free slots."""
        store = self.client.store
        now = time.time()
        await store.fire_due_timers(now=now, limit=100)
        claimed = 0
        free = self.concurrency - self._in_flight
        if self.workflows and free > 0:
            tasks = await store.claim_workflow_tasks(self.workflows, self.identity,
                                                     lease=self.lease, now=now, limit=free)
            for task in tasks:
                self._spawn(group, self._workflow_runner.run(task))
            claimed += len(tasks)
            free -= len(tasks)
        if self.actions and free > 0:
            actions = await store.claim_action_tasks(self.actions, self.identity,
                                                     lease=self.lease, now=now, limit=free)
            for action in actions:
                self._spawn(group, self._action_runner.run(action))
            claimed += len(actions)
        return claimed

    def _spawn(self, group: asyncio.TaskGroup, work: Any) -> None:
        self._in_flight += 1

        async def tracked() -> None:
            try:
                await work
            finally:
                self._in_flight -= 1
                self.client.store.wakeup.notify()

        group.create_task(tracked())
