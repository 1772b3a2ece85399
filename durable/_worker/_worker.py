"""``Worker``: polls the store for workflow tasks, action tasks and due timers, and runs them."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections import Counter
from contextvars import ContextVar
from types import TracebackType
from typing import Any, Generator, Iterable, Mapping

from .._cancelling import raise_if_cancelling
from .._guard_live import DeterminismMode, Sampler, check_mode
from .._history import ActionCompleted, ActionFailed
from .._ports import ClientPort
from .._definitions import (
    ActionDefinition, WorkflowDefinition, action_definition, workflow_definition,
)
from .._dispatch import Claim, ClaimSpec
from .._lanes import enter
from .._limits import QueueLimit, RouteLimit, check_queue_limits
from .._payloads import payload_limit
from .._queues import HOSTS_REFRESH, check_queues, route
from .._stores import ActionTask, TaskRef, WorkflowTask
from .._telemetry import Telemetry
from .._telemetry._metrics import MetricsServer, WorkerMetrics
from .._validate import MAX_DURATION, check_count, check_id, check_number, show
from ..errors import ArgumentTypeError, InputError, InvalidArgumentError
from ._action_tasks import ActionTaskRunner, check_transactional
from ._holds import Holds
from ._liveness import LIVENESS_TIMEOUT, Liveness
from ._cache import InstanceCache
from ._workflow_tasks import WorkflowTaskRunner

__all__ = ["Worker"]

logger = logging.getLogger("durable.worker")


class _Slot:
    """The slot a task the worker spawned runs in; ``handed`` once its commit passed it on to
    an action it created (``Worker.reserve``), which then gives it back. ``extra``: a
    workflow task's slot beyond ``concurrency`` on a worker whose slots were all taken
    (``Worker._poll_full``), which is never handed on."""

    __slots__ = ("handed", "extra")

    def __init__(self, extra: bool = False) -> None:
        self.handed = False
        self.extra = extra


_FULL_WAIT = 0.02  # seconds a full worker's claim of workflow tasks waits for hints
_HELD_FOR = 0.25  # seconds without a task ending after which a full worker runs a few more

_slot: ContextVar[_Slot | None] = ContextVar("durable_slot", default=None)  # the running task's


class Worker:
    """Runs workflows and actions for a client's store.

    ``await worker.run()`` runs until cancelled or :meth:`shutdown`; ``async with
    Worker(...)`` runs it in the background for the block. ``concurrency`` bounds the tasks
    running at once (when long actions hold every slot, a tenth more workflow tasks may run:
    see ``_poll_full``); ``lease`` (seconds) is how long a claimed task stays invisible to other
    workers without a heartbeat: how soon the work of a worker that hangs is picked up again.
    A worker whose process dies has its work released within a fraction of a second, one
    whose host vanishes after ``liveness_timeout`` seconds without a heartbeat (the
    ``_liveness`` module tells how).
    ``inline_actions`` lets the first attempt of short actions run inside the workflow task
    that schedules them (see ``durable.action(inline=...)``). Every ``snapshot_every`` events
    of an execution (0: never) the worker saves a snapshot of it, keeping the
    ``snapshots_kept`` newest: time travel and ``describe()`` start from them.

    ``eager_actions``: a workflow task's new actions that this worker hosts are created leased
    to it, as many as it has free slots for, and start at once, each as a task of its own
    with its own lease (no hint, no claim: Temporal's eager activities); False leaves every
    action to be claimed. A limited action starts so only holding a slot and a token of each
    of its limits (``_holds``) until its attempt ends; else it is claimed under them.

    ``determinism``: workflow code that runs live (not in replay) is watched for calls that
    break replay (``datetime.now()``, ``time.time()``, the ``random`` module, ``uuid4()``,
    ``os.environ``, ``secrets``): ``"warn"`` (default) warns once per call site with its
    ``file:line`` and the ``ctx.`` replacement, watching samples of each code path's
    activations, ``"error"`` watches every one and raises ``IllegalWorkflowOperationError``
    at the call, ``"off"`` does not watch (``_guard_live``).

    ``queues``: the task queues it serves. By default each workflow and action is hosted on
    its own queue (``durable.workflow(queue=...)``); with a list, each is hosted on every
    queue listed. A task is run only by a worker that hosts its name on its queue.

    ``queue_limits``: ``{"email": durable.QueueLimit(max_concurrent=5, rate="100/s")}`` bounds
    the action attempts on each queue named (one the worker serves), across every worker that
    declares the limit, on top of each action's own limits (``durable._limits``). Limited
    actions still run inline while their limits have room (``_holds``).

    ``metrics_port``: serve Prometheus metrics at ``http://{metrics_host}:{port}/metrics``
    while it runs (0 picks a free port, then ``metrics_port`` is the bound one; None: no
    metrics, the default). ``metrics_host`` defaults to loopback: expose it on purpose.
    Needs ``prometheus-client`` (the ``server`` extra); ``durable._telemetry._metrics`` lists
    the metrics.
    """

    def __init__(self, client: ClientPort, workflows: Iterable[Any] = (), actions: Iterable[Any] = (),
                 *, concurrency: int = 100, lease: float = 30.0, poll_interval: float = 0.2,
                 max_cached: int = 1000, inline_actions: bool = True,
                 identity: str | None = None, snapshot_every: int = 1000,
                 snapshots_kept: int = 5, liveness_timeout: float = LIVENESS_TIMEOUT,
                 queues: Iterable[str] | None = None,
                 queue_limits: Mapping[str, QueueLimit] | None = None,
                 eager_actions: bool = True, metrics_port: int | None = None,
                 metrics_host: str = "127.0.0.1", determinism: DeterminismMode = "warn") -> None:
        _check_options(concurrency, lease, poll_interval, max_cached, inline_actions, identity,
                       snapshot_every, snapshots_kept)
        if not isinstance(eager_actions, bool):
            raise ArgumentTypeError(f"eager_actions is a bool, not {show(eager_actions)}",
                                    parameter="eager_actions")
        check_number(liveness_timeout, "liveness_timeout", minimum=0.0, exclusive=True,
                     maximum=MAX_DURATION)
        self.client = client
        self.workflows = {d.name: d for d in map(workflow_definition, _listed(workflows))}
        self.actions = {d.name: d for d in map(action_definition, _listed(actions))}
        for defn in self.actions.values():
            check_transactional(defn, client.store)  # a store that cannot run it: say so now
        self.queues = check_queues(queues)
        self.hosted_workflows = hosted(self.workflows.values(), self.queues)
        self.hosted_actions = hosted(self.actions.values(), self.queues)
        self.identity = identity or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.concurrency = concurrency
        self.lease = lease
        self.poll_interval = poll_interval
        self.cache = InstanceCache(max_cached)
        self.metrics_port = metrics_port
        self.telemetry = telemetry = _telemetry(client, self.cache, metrics_port, metrics_host)
        self._metrics_server = None if telemetry.metrics is None else MetricsServer(
            telemetry.metrics, metrics_host, metrics_port or 0)
        self._liveness = Liveness(client.store, lambda: client.dispatcher, client.clock,
                                  self.identity, timeout=float(liveness_timeout),
                                  alive=lambda: [w.identity for w in client._workers])
        self._action_runner = ActionTaskRunner(client, self.identity, self.actions, lease,
                                               telemetry)
        self._workflow_runner = WorkflowTaskRunner(
            client, self.identity, self.workflows, self.actions, self.cache, self._action_runner,
            inline_budget=lease / 2 if inline_actions else 0.0, snapshot_every=snapshot_every,
            snapshots_kept=snapshots_kept, telemetry=telemetry)
        self._workflow_runner.hosted_actions = self.hosted_actions
        self._workflow_runner.guard = Sampler(check_mode(determinism))
        self._workflow_runner.slots = self
        self._action_runner.settle = self._settle
        self.eager_actions = eager_actions
        self._pledged = 0  # slots a waiting claim may fill
        # whether commits may start actions here (eager): then a claim leaves them room
        self._shares_slots = eager_actions and bool(self.workflows) and bool(self.actions)
        self.queue_limits = check_queue_limits(queue_limits, self.queues,
                                               {d.queue for d in self.actions.values()})
        self._in_flight = 0
        self._workflow_tasks = 0  # of those, claimed workflow tasks and eager starts
        # when a task in one of concurrency's slots last ended (a slot handed on counts: the
        # worker is full, not stuck), or the worker was made
        self._ended_at = time.monotonic()
        self._tenants: Counter[str] = Counter()  # tasks in flight by tenant
        self._reserve = max(1, concurrency // 10)  # slots for tenants with none in flight
        self._seen_when_full = 0
        self._hosts = [("w", r) for r in sorted(self.hosted_workflows)] + [
            ("a", r) for r in sorted(self.hosted_actions)]
        self._announced_at = float("-inf")
        limits = {route(d.name, q): RouteLimit(d.limit, self.queue_limits.get(q))
                  for d in self.actions.values() for q in (self.queues or (d.queue,))
                  if d.limit or q in self.queue_limits}
        self._spec = ClaimSpec(self.identity, self.hosted_workflows, self.hosted_actions,
                               lease, self.cache.seq_of, limits)
        self._holds = self._workflow_runner.holds = Holds(client.store, self.identity, lease,
                                                          client.clock, limits)
        self._stopping = asyncio.Event()
        self._background: asyncio.Task[None] | None = None
        self._group: asyncio.TaskGroup | None = None  # while run() runs: takes eager starts

    @property
    def in_flight(self) -> int:
        """How many claimed tasks are running right now."""
        return self._in_flight

    # ---- lifecycle ----------------------------------------------------------------------

    async def run(self) -> None:
        """Poll and run work until :meth:`shutdown` is called or this task is cancelled."""
        self._stopping.clear()
        await self._serve()

    async def _serve(self) -> None:
        # The heartbeat goes on until the tasks in flight have finished (a shutdown waits for
        # them), so that peers do not take this worker for dead meanwhile.
        finished = asyncio.Event()
        if self._metrics_server is not None:
            self._metrics_server.start()
            self.metrics_port = self._metrics_server.port
        liveness = asyncio.create_task(self._liveness.run(finished))
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                self.client._workers.append(self)
                try:
                    await self._poll(group)
                finally:
                    self.client._workers.remove(self)
                    self._group = None
                    self.cache.clear()
                    await self._retire()
        finally:  # what it still holds (cancelled tasks) is released, not left to its lease
            finished.set()
            liveness.cancel()
            await asyncio.gather(liveness, return_exceptions=True)
            await asyncio.shield(self._liveness.stop())
            if self._metrics_server is not None:
                await asyncio.shield(self._metrics_server.stop())

    async def _poll(self, group: asyncio.TaskGroup) -> None:
        failures = 0
        while not self._stopping.is_set():
            raise_if_cancelling()
            try:
                await self._announce()
                await self._holds.trim()
                await self._poll_once(group, self.poll_interval)
                failures = 0
            except Exception as exc:  # the store is down: back off and try again
                failures += 1
                delay = min(0.1 * 2 ** failures, 5.0)
                logger.warning("worker %s: polling failed (%s); retrying in %.1fs",
                               self.identity, exc, delay)
                await asyncio.sleep(delay)

    async def _announce(self) -> None:
        """Refresh the store's record of what this worker hosts (every ``HOSTS_REFRESH`` s),
        which ``describe()`` reads to say that no live worker hosts what an execution needs;
        at the first, record its workflows' retention (``durable._retention``)."""
        now = self.client.clock()
        if now - self._announced_at >= HOSTS_REFRESH:
            if self._announced_at == float("-inf") and self.workflows:  # once per run()
                await self.client.store.declare_retention(
                    {d.name: d.retention for d in self.workflows.values()})
            await self.client.store.register_hosts(self.identity, self._hosts, now=now)
            self._announced_at = now

    async def _retire(self) -> None:
        """Hand back the hints it holds and remove this worker's record, both at once and
        both best effort: otherwise other workers take the hints over after a lease (or the
        outbox announces their tasks again), and the record expires after ``HOSTS_TTL``."""
        calls = [self.client.dispatcher.retire(self.identity)]
        if self._announced_at > float("-inf"):
            self._announced_at = float("-inf")
            calls.append(self.client.store.unregister_hosts(self.identity))
        for outcome in await asyncio.shield(asyncio.gather(*calls, return_exceptions=True)):
            if isinstance(outcome, Exception):
                logger.debug("worker %s stopping: %s", self.identity, outcome,
                             exc_info=outcome)

    def takes_eager(self, workflow: str, tenant: str) -> bool:
        """Whether this worker can run a new execution of ``workflow`` (a route: the name on
        its queue) for ``tenant`` at once (eager start: its client creates the execution
        leased to this worker and hands it over). A tenant with nothing running here may use
        a few slots beyond ``concurrency``: another tenant's backlog does not make it wait for
        a free slot. True takes the slot: ``run_eager`` runs the task in it, or ``unreserve``
        gives it back."""
        if self._group is None or self._stopping.is_set() \
                or workflow not in self.hosted_workflows:
            return False
        if self._in_flight < self.concurrency or self._alone(tenant, own=0):
            self._in_flight += 1  # taken now: concurrent starts do not all see the same room
            return True
        return False

    def _alone(self, tenant: str, own: int) -> bool:
        """Whether ``tenant`` runs nothing here but its ``own`` tasks (the one asking) and a
        slot kept for such tenants is free."""
        return self._tenants[tenant] <= own and \
            self._in_flight < self.concurrency + self._reserve

    def reserve(self, wanted: int, tenant: str) -> int:
        """Take up to ``wanted`` free slots for actions a commit of ``tenant`` creates leased
        to this worker (eager dispatch; ``run_reserved`` starts them). On a full worker, a
        tenant whose commit is all it runs here may start one action in the slots kept for
        such tenants: another tenant's backlog does not send it to the queue. Every commit
        runs in a slot it gives up right after (its workflow task's, or the action's whose
        outcome it settles): while its tenant is the only one running here, it passes that
        slot on to its first action, so a workflow goes on without a round trip through
        the queue (a worker that claimed more workflow tasks than it has room for actions
        after them, as after another worker's crash, no longer sends their actions to the
        queue); when several tenants share the worker, freed slots are claimed in their turn
        instead."""
        if self._group is None or self._stopping.is_set() or not self.eager_actions:
            return 0
        room = self.concurrency - self._in_flight - self._pledged
        if room < 1:
            slot = _slot.get()
            if wanted and slot is not None and not slot.handed and not slot.extra \
                    and len(self._tenants) == 1:
                slot.handed = True  # the caller's slot is its action's now: no count changes
                return 1
            room = 1 if self._alone(tenant, own=1) else 0
        taken = max(0, min(wanted, room))
        self._in_flight += taken
        return taken

    def unreserve(self, count: int) -> None:
        """Give back slots that ``reserve`` took and no task will use (a slot the caller handed
        on is its own again)."""
        slot = _slot.get()
        if count and slot is not None and slot.handed:  # the caller keeps its own slot
            slot.handed = False
            count -= 1
        self._in_flight -= count
        self.client.store.wakeup.notify()

    def run_reserved(self, tasks: list[ActionTask]) -> None:
        """Start action tasks leased to this worker, in slots ``reserve`` took for them."""
        if self._group is None:  # stopped meanwhile: their leases lapse and they run again
            self.unreserve(len(tasks))
            return
        for task in tasks:
            self._spawn(self._group, Claim(task), reserved=True)

    def run_eager(self, task: WorkflowTask) -> bool:
        """Run a workflow task that its execution's creation leased to this worker, in the
        slot ``takes_eager`` took (given back if the worker stopped meanwhile)."""
        if self._group is None or self._stopping.is_set():
            self.unreserve(1)
            return False
        self._spawn(self._group, Claim(task), reserved=True)
        return True

    async def run_until_idle(self) -> None:
        """Run everything that is due now, and what it leads to, then return (tests, scripts)."""
        await self._announce()
        async with asyncio.TaskGroup() as group:
            while True:
                # Idle only when a claim found nothing while nothing ran: a task that ends
                # during the claim may have made new work the claim did not see.
                idle = self._in_flight == 0
                claimed = await self._poll_once(group)
                if not claimed and idle and self._in_flight == 0:
                    return
                if not claimed:
                    await asyncio.sleep(0.001)

    def shutdown(self) -> None:
        """Stop claiming work; ``run()`` returns once the tasks in flight have finished."""
        self._stopping.set()

    async def __aenter__(self) -> Worker:
        self._stopping.clear()  # here, not in the task: a shutdown before it starts holds
        self._background = asyncio.create_task(self._serve(),
                                               name=f"durable worker {self.identity}")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.shutdown()
        if self._background is not None:
            await self._background

    def __await__(self) -> Generator[Any, None, None]:
        return self.run().__await__()

    # ---- polling ------------------------------------------------------------------------

    async def _poll_once(self, group: asyncio.TaskGroup, timeout: float = 0.0) -> int:
        """Start as much claimed work as there are free slots; wait up to ``timeout`` for it."""
        free = self.concurrency - self._in_flight
        if free <= 0:
            return await self._poll_full(group, timeout)
        # While a claim waits, the slots it asked for are pledged to it; with eager actions it
        # asks for half the free ones, and commits may start their actions in the others.
        self._pledged = max(1, free // 2) if self._shares_slots else free
        try:
            claims = await self.client.dispatcher.receive(self._spec, limit=self._pledged,
                                                          timeout=timeout)
        finally:
            self._pledged = 0
        for claim in claims:
            self._spawn(group, claim)
        return len(claims)

    async def _poll_full(self, group: asyncio.TaskGroup, timeout: float) -> int:
        """Every slot is taken. Workflow tasks are short and do not wait for actions to end:
        when no task has ended for ``_HELD_FOR`` seconds (long actions hold the slots), a few
        workflow tasks run beyond ``concurrency`` (the slots kept for other tenants), so that
        other workflows' starts, timers and events go on; their actions wait for a slot (as
        Temporal's workflow tasks do not wait for activity slots). Their claims wait only
        briefly: no hint comes when a slot frees. Else wait for a task to end (each notifies).
        """
        spare = min(self.concurrency + self._reserve - self._in_flight,
                    self._reserve - self._workflow_tasks)
        if not self.hosted_workflows or spare <= 0 \
                or time.monotonic() - self._ended_at < _HELD_FOR:
            await self.client.store.wakeup.wait(timeout, self._seen_when_full)
            self._seen_when_full = self.client.store.wakeup.generation
            return 0
        claims = await self.client.dispatcher.receive(
            self._spec, limit=spare, timeout=min(timeout, _FULL_WAIT), kinds={"w": spare})
        for claim in claims:
            self._spawn(group, claim, extra=True)
        return len(claims)

    def _spawn(self, group: asyncio.TaskGroup, claim: Claim, reserved: bool = False,
               extra: bool = False) -> None:
        if not reserved:
            self._in_flight += 1
        tenant = claim.task.tenant
        self._tenants[tenant] += 1
        workflow_task = isinstance(claim.task, WorkflowTask)
        self._workflow_tasks += workflow_task

        async def tracked() -> None:
            enter(tenant)  # its store operations queue in its tenant's lane
            slot = _Slot(extra)
            _slot.set(slot)
            woke: TaskRef | None = None
            try:
                with payload_limit(self.client.max_payload_bytes):  # its client's, in its tasks
                    if isinstance(claim.task, WorkflowTask):
                        await self._workflow_runner.run(claim.task)
                    else:
                        woke = await self._action_runner.run(
                            claim.task, "eager" if reserved else "claimed")
                await self.client.dispatcher.ack([claim])
            except Exception:  # the runners handle task errors; this is a lost ack (Redis down)
                logger.warning("could not acknowledge %s; it will be redelivered", claim.task,
                               exc_info=True)
            try:
                if woke is not None:
                    with payload_limit(self.client.max_payload_bytes):
                        await self._wake(woke)
            finally:
                if reserved and isinstance(claim.task, ActionTask) \
                        and self._holds.buckets(claim.task):
                    self._holds.release([claim.task])  # held for it by its commit (eager)
                if not slot.handed:  # else the action it handed its slot to gives it back
                    self._in_flight -= 1
                self._workflow_tasks -= workflow_task
                if not extra:
                    self._ended_at = time.monotonic()
                self._tenants[tenant] -= 1
                if not self._tenants[tenant]:
                    del self._tenants[tenant]
                self.client.store.wakeup.notify()

        group.create_task(tracked())

    async def _settle(self, task: ActionTask, outcome: ActionCompleted | ActionFailed) -> bool:
        """Record an action's outcome with the workflow task it makes due, run here in the
        action's slot, when this worker holds the execution's instance (see
        ``WorkflowTaskRunner.settle``)."""
        return not self._stopping.is_set() and await self._workflow_runner.settle(task, outcome)

    async def _wake(self, ref: TaskRef) -> None:
        """The workflow task an action's outcome made due: when this worker holds the
        execution's instance and is not busy, or the action is all its tenant runs here, run
        it here at once, in the action's slot (claimed by its key, with the history it lacks:
        no hint, no other worker); else announce it (a busy worker's claims take such tasks
        in batches, one round trip each, which serves more at once than a claim per
        outcome, and in turn with other tenants' tasks)."""
        if not self._stopping.is_set() and self.cache.seq_of(ref.tenant, ref.workflow_id) \
                and (self._in_flight <= self._reserve or self._tenants[ref.tenant] <= 1):
            try:
                tasks, _ = await self.client.store.claim_refs(
                    [ref], self.identity, workflows=self.hosted_workflows, actions=(),
                    lease=self.lease, now=self.client.clock(), history_after=self.cache.seq_of)
            except Exception:  # announced instead: any worker, or this one, claims it
                logger.debug("could not claim %s/%s", ref.tenant, ref.workflow_id, exc_info=True)
                tasks = []
            if tasks:
                await self._workflow_runner.run(tasks[0])
                return
        await self.client.publish([ref])


def _check_options(concurrency: Any, lease: Any, poll_interval: Any, max_cached: Any,
                   inline_actions: Any, identity: Any, snapshot_every: Any,
                   snapshots_kept: Any) -> None:
    """``Worker``'s options, each of its type and in range, or ``InvalidArgumentError`` (an
    ``ArgumentTypeError`` for a value of the wrong type)."""
    if not isinstance(inline_actions, bool):
        raise ArgumentTypeError(f"inline_actions is a bool, not {show(inline_actions)}")
    if identity is not None:
        check_id(identity, "a worker identity")
    try:
        check_count(concurrency, "concurrency", minimum=1, maximum=1_000_000)
        check_number(lease, "lease", minimum=0.0, exclusive=True, maximum=MAX_DURATION)
        check_number(poll_interval, "poll_interval", minimum=0.0, exclusive=True,
                     maximum=MAX_DURATION)
        check_count(max_cached, "max_cached")
        check_count(snapshot_every, "snapshot_every")
        check_count(snapshots_kept, "snapshots_kept", minimum=1)
    except ArgumentTypeError:
        raise
    except InputError as exc:
        raise InvalidArgumentError(
            f"{exc.message}: concurrency >= 1, lease > 0 and poll_interval > 0 are required, "
            "max_cached >= 0, snapshot_every >= 0 (0: no snapshots) and snapshots_kept >= 1",
            parameter=getattr(exc, "parameter", None)) from None


def _telemetry(client: ClientPort, cache: InstanceCache, port: Any, host: Any) -> Telemetry:
    """The worker's telemetry, with metrics if ``port`` is given."""
    if port is None:
        return Telemetry(client.store, client.clock, None)
    check_count(port, "metrics_port", maximum=65535)
    if not isinstance(host, str) or not host:
        raise ArgumentTypeError(f"metrics_host is a host name or address, not {show(host)}",
                                parameter="metrics_host")
    held: set[tuple[str, str]] = set()
    telemetry = Telemetry(client.store, client.clock, WorkerMetrics(
        lambda: len(cache), lambda: len(held)))
    telemetry.held = held
    return telemetry


def hosted(definitions: Iterable[WorkflowDefinition | ActionDefinition],
           queues: frozenset[str] | None) -> frozenset[str]:
    """The routes a worker hosts: each definition on its own queue, or on each of ``queues``."""
    return frozenset(route(d.name, q) for d in definitions for q in (queues or (d.queue,)))


def _listed(items: Any) -> list[Any]:
    """Workflows or actions as a list; an ``ArgumentTypeError`` if they are not iterable."""
    if isinstance(items, (str, bytes)) or not hasattr(items, "__iter__"):
        raise ArgumentTypeError(f"workflows and actions are given as lists, not {show(items)}")
    return list(items)
