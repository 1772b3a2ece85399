"""``Environment``: workflows under test on a memory store, with virtual time that skips ahead.

Time is a ``VirtualClock`` that stands still until the environment moves it. It moves only
while the test waits on the environment (``handle.result()``, ``env.sleep()``) and the
workers are idle: no task is running (an action that waits in real time holds the clock) and
none is due now. Then it jumps straight to the next due timer, retry or ``sleep`` deadline.
So a 30-day sleep passes in milliseconds, and whatever the test does between two waits
(``send``, ``describe``) happens at one fixed virtual instant.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, TypeVar, TypeVarTuple, Unpack, final

from .._cancelling import cancelling
from .._client import Client, WorkflowHandle
from .._scope import DEFAULT_TENANT
from .._replay._context import Context
from .._definitions import WorkflowDefinition, seconds, workflow_definition
from .._stores.memory import MemoryStore
from .._starts import IdReuse, OnConflict
from .._validate import check_id, check_timeout
from .._worker import Worker
from ..errors import (
    InvalidArgumentError, UnknownActionError, UnknownWorkflowError, UsageError, WorkflowHeldError,
)
from ._clock import VirtualClock
from ._doubles import ActionRef, host_actions

__all__ = ["Environment"]

R = TypeVar("R")
Ts = TypeVarTuple("Ts")

_YIELDS = 5  # loop turns with nothing to do before the workers count as idle
_POLL = 0.05  # real seconds between checks while something runs in real time
_STUCK_CHECKS = 3  # idle-but-due checks before looking for work nobody hosts


@final
class Environment:
    """Run workflows in-process against a memory store, skipping the time they wait.

    ``async with durable.testing.Environment(workflows=[...], actions=[...]) as env:`` gives
    ``env.client`` (a ``durable.Client``) with a worker running the given workflows and
    actions. ``doubles`` swaps actions (by function or registered name) for fakes with the
    same signature; the action keeps its name, retry policy and timeout. ``tenant`` and
    ``tenants`` are the client's tenant and scope, as for ``durable.connect``.

    Time is virtual (``env.clock``, starting at ``start``, by default now). While the test
    awaits ``handle.result()`` and nothing can run, it jumps to the next due timer or retry;
    ``time_skipping=False`` keeps it still there, so that only ``env.sleep()`` moves it.
    Real-time waits inside actions are not skipped: the clock holds while an action runs.

    ``always_replay=True`` rebuilds the workflow from its history for every task instead of
    keeping it live, so that non-deterministic workflow code fails the test (with
    ``WorkflowHeldError``) rather than the first production worker that has to replay it.
    """

    def __init__(self, workflows: Iterable[Any] = (), actions: Iterable[Any] = (), *,
                 doubles: Mapping[ActionRef, Callable[..., Any]] | None = None,
                 start: datetime | float | None = None, time_skipping: bool = True,
                 always_replay: bool = False, tenant: str = DEFAULT_TENANT,
                 tenants: str | Iterable[str] | None = None) -> None:
        self.workflows = {d.name: d for d in map(workflow_definition, workflows)}
        self.actions = {d.name: d for d in host_actions(actions, doubles or {})}
        self.time_skipping = time_skipping
        self.always_replay = always_replay
        self.tenant = tenant
        self.tenants = tenants
        self.clock = VirtualClock(start)
        self._client: _Client | None = None
        self._worker: Worker | None = None
        self._running: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()  # one waiter moves the clock at a time
        self._deadlines: list[float] = []  # ends of the env.sleep() calls in progress

    # ---- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> Environment:
        store = MemoryStore(clock=self.clock)  # timers are due on the virtual clock
        self._client = _Client(self, store, tenant=self.tenant, tenants=self.tenants,
                               clock=self.clock)
        self._worker = Worker(self._client, self.workflows.values(), self.actions.values(),
                              max_cached=0 if self.always_replay else 1000)
        self._running = asyncio.create_task(self._worker.run(), name="durable.testing worker")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        running, self._running = self._running, None
        if running is not None:
            running.cancel()
            try:
                await running
            except asyncio.CancelledError:
                if cancelling():
                    raise
        if self._client is not None:
            await self._client.close()

    @property
    def client(self) -> Client:
        """The client on the environment's store; its handles skip time in ``result()``."""
        if self._client is None:
            raise _not_entered()
        return self._client

    @property
    def worker(self) -> Worker:
        """The worker that runs the environment's workflows and actions."""
        if self._worker is None:
            raise _not_entered()
        return self._worker

    # ---- time ---------------------------------------------------------------------------

    def now(self) -> datetime:
        """The virtual time (aware, UTC): what ``ctx.now()`` returns in a workflow now."""
        return self.clock.now()

    async def sleep(self, duration: float | timedelta) -> None:
        """Let ``duration`` of virtual time pass: every timer, retry and timeout due on the
        way fires in order, and the workers run what follows; returns once they are idle."""
        step = seconds(duration)
        if step < 0:
            raise InvalidArgumentError(f"cannot sleep a negative duration ({step}s)")
        target = self.clock() + step
        self._deadlines.append(target)
        try:
            while True:
                async with self._lock:
                    await self._settle()
                    if self.clock() >= target:
                        return
                    await self._raise_if_held(None)
                    await self._jump()
        finally:
            self._deadlines.remove(target)

    async def wait_idle(self) -> None:
        """Return once nothing can run at the current virtual time (the clock does not move)."""
        async with self._lock:
            await self._settle()

    async def _result(self, handle: WorkflowHandle[Any], waiting: Awaitable[R]) -> R:
        """``waiting`` (the handle's result), skipping time while nothing else can happen."""
        waiter = asyncio.ensure_future(waiting)
        try:
            while not waiter.done():
                async with self._lock:
                    await self._settle(waiter)
                    if waiter.done():
                        break
                    await self._raise_if_held(handle)
                    jumped = await self._jump()
                if not jumped:  # nothing is scheduled: only the test itself can go on
                    await asyncio.wait([waiter], timeout=_POLL)
            return waiter.result()
        finally:
            waiter.cancel()

    async def _jump(self) -> bool:
        """Move the clock to the next due time (no further than a sleep's end)."""
        store = self.client.store
        now = self.clock()
        due = await store.next_wakeup(now=now)
        targets = [t for t in (due, *self._deadlines) if t is not None]
        if not targets:
            return False
        self.clock.advance_to(max(min(targets), now))
        store.wakeup.notify()
        return True

    # ---- idleness -----------------------------------------------------------------------

    async def _settle(self, stop: asyncio.Future[Any] | None = None) -> None:
        """Wait until nothing runs and nothing is due at the current time (or ``stop`` is done)."""
        store = self.client.store
        stuck = 0
        while stop is None or not stop.done():
            seen = store.wakeup.generation
            for _ in range(_YIELDS):
                await asyncio.sleep(0)
            self._check_worker()
            if not await self._busy():
                if store.wakeup.generation == seen:
                    return
                continue
            if self.worker.in_flight == 0:
                stuck += 1
                if stuck >= _STUCK_CHECKS:
                    await self._raise_if_unhosted()
            await store.wakeup.wait(_POLL, seen)

    async def _busy(self) -> bool:
        if self.worker.in_flight:
            return True
        now = self.clock()
        due = await self.client.store.next_wakeup(now=now)
        return due is not None and due <= now

    def _check_worker(self) -> None:
        running = self._running
        if running is None:
            raise UsageError("the Environment is closed")
        if running.done():  # a bug in the worker: show it rather than wait forever
            running.result()
            raise UsageError("the Environment's worker stopped")

    async def _raise_if_unhosted(self) -> None:
        """Due work that no worker here will ever run is an error, not a wait."""
        store, now = self.client.store, self.clock()
        for record in await store.list_executions(None, status="running", limit=1_000_000):
            actions, _ = await store.pending_work(record.tenant, record.workflow_id)
            for task in actions:
                if task.name not in self.actions and task.visible_at <= now:
                    raise UnknownActionError(
                        f"workflow {record.workflow!r} (id {record.workflow_id!r}) called action "
                        f"{task.name!r}, which this Environment does not run: pass it in "
                        "Environment(actions=[...]) or give it a test double",
                        name=task.name, workflow_id=record.workflow_id)

    async def _raise_if_held(self, handle: WorkflowHandle[Any] | None) -> None:
        """An execution (this one, or any) whose workflow task keeps failing is an error:
        moving time on would only retry it, with backoff, forever."""
        store = self.client.store
        if handle is None:
            records = await store.list_executions(None, status="running", limit=1_000_000)
        else:
            one = await store.get_execution(handle.tenant, handle.workflow_id)
            records = [] if one is None else [one]
        for record in records:
            if record.status == "running" and record.task_error:
                raise WorkflowHeldError(
                    f"execution {record.workflow_id!r} cannot go on, its workflow task fails: "
                    f"{record.task_error}", workflow_id=record.workflow_id,
                    task_error=record.task_error)


def _not_entered() -> UsageError:
    return UsageError("use the Environment as `async with Environment(...) as env:`")


class _Client(Client):
    """The environment's client: it starts only hosted workflows; its handles skip time."""

    def __init__(self, env: Environment, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.env = env

    async def start(self, workflow: Callable[[Context, Unpack[Ts]], Awaitable[R]] | str,
                    *args: Unpack[Ts], id: str | None = None,
                    tenant: str | None = None, queue: str | None = None, priority: int = 0,
                    fairness_key: str | None = None, on_conflict: OnConflict | None = None,
                    id_reuse: IdReuse = "allow") -> WorkflowHandle[R]:
        defn = self._hosted(workflow)
        handle: WorkflowHandle[R] = await super().start(  # pyright: ignore[reportUnknownVariableType]
            defn, *args, id=id, tenant=tenant, queue=queue,  # type: ignore[arg-type]
            priority=priority, fairness_key=fairness_key, on_conflict=on_conflict,
            id_reuse=id_reuse)
        ours: _Handle[R] = _Handle(self, handle.workflow_id, handle.tenant, defn)
        ours._created_in = handle._created_in
        return ours

    def _hosted(self, workflow: Any) -> WorkflowDefinition:
        hosted = self.env.workflows
        defn = workflow_definition(workflow, hosted)
        if hosted.get(defn.name) is not defn:
            raise UnknownWorkflowError(
                f"the Environment does not run workflow {defn.name!r}: pass it in "
                f"Environment(workflows=[...]) (it runs {sorted(hosted) or 'none'})",
                name=defn.name)
        return defn

    def get_handle(self, workflow_id: str, *, tenant: str | None = None) -> WorkflowHandle[Any]:
        return _Handle(self, check_id(workflow_id, "a workflow id"), self._tenant(tenant))


class _Handle(WorkflowHandle[R]):
    """A handle whose ``result()`` lets virtual time pass while it waits."""

    client: _Client

    async def result(self, timeout: float | None = None) -> R:
        """Wait for the execution to end (``timeout`` is in real seconds), skipping idle time."""
        env = self.client.env
        timeout = check_timeout(timeout, "result(timeout=)")
        if not env.time_skipping:
            return await super().result(timeout)
        async with asyncio.timeout(timeout):
            return await env._result(self, super().result())

    async def update(self, name: str, *args: Any, **options: Any) -> Any:
        """Deliver an update (see ``WorkflowHandle.update``); virtual time passes while its
        handler waits for timers."""
        env = self.client.env
        if not env.time_skipping:
            return await super().update(name, *args, **options)
        return await env._result(self, super().update(name, *args, **options))
