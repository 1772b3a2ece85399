"""Running one workflow task: load (or reuse) the instance, activate it, commit atomically."""

from __future__ import annotations

import asyncio
import logging
from time import monotonic, perf_counter
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Protocol

from msgspec.structs import replace

from .._guard_live import Sampler
from .._ports import ClientPort
from .._definitions import ActionDefinition, WorkflowDefinition
from .._history import (
    INPUT_TYPES, ActionCompleted, ActionFailed, CancelWorkflow, CompleteWorkflow, ContinueAsNew,
    Event, FailWorkflow, TaskCompleted, WorkflowStarted,
)
from .._payloads import describe_error, dump_value, safe_text
from .._queues import route
from .._replay import WorkflowInstance, replay
from .._stores import (
    TERMINAL_STATUSES, ActionTask, ExecutionUpdate, Settled, Snapshot, WorkflowTask,
)
from .._telemetry import TaskWatch, Telemetry
from ._cache import Cached, InstanceCache
from ..errors import HistoryError, NonDeterminismError, UnknownWorkflowError
from ._requests import admit_updates, answer_queries, failure_replies, orphan_replies
from ._task_commit import TaskCommit

if TYPE_CHECKING:
    from ._action_tasks import ActionTaskRunner
    from ._holds import Holds

__all__ = ["WorkflowTaskRunner"]

logger = logging.getLogger("durable.worker")

_INPUTS = frozenset(INPUT_TYPES)
_CONFLICT_RETRIES = 5
INLINE_BUDGET = 1.0  # seconds an inline attempt may run before it is queued instead
_INLINE_ROUNDS = 100  # batches one workflow task may run inline before it commits


def _never(action: ActionTask) -> bool:
    return False


def _backoff(attempt: int) -> float:
    return min(2.0 ** (attempt - 1), 60.0)


class ActionSlots(Protocol):
    """The worker's slots, for the actions a commit creates leased to it (eager dispatch)."""

    def reserve(self, wanted: int, tenant: str) -> int:
        """Take up to ``wanted`` free slots for ``tenant``'s actions; how many were taken.
        The caller, a workflow task's commit, runs in a slot it gives up once done."""
        ...

    def unreserve(self, count: int) -> None:
        """Give back slots that no task will use."""
        ...

    def run_reserved(self, tasks: list[ActionTask]) -> None:
        """Start leased action tasks in slots taken for them."""
        ...


def _snapshot(task: WorkflowTask, entry: Cached, commit: TaskCommit) -> Snapshot | None:
    """What the instance says at the end of the commit's last batch, taken now (before a next
    task can move it on)."""
    instance = entry.instance
    if commit.boundary is None or instance.done:
        return None
    seq, time = commit.boundary
    return Snapshot(task.tenant, task.workflow_id, instance.info.run_id, seq, time, "running",
                    instance.state, dump_value(dict(instance.data), "ctx.data"), entry.at)


def _update(instance: WorkflowInstance) -> ExecutionUpdate:
    last = instance.outcome
    state, data = instance.state, dict(instance.data)
    if type(last) is CompleteWorkflow:
        return ExecutionUpdate("completed", state, data, result=last.result)
    if type(last) is FailWorkflow:
        return ExecutionUpdate("failed", state, data, error=last.error)
    if type(last) is CancelWorkflow:
        return ExecutionUpdate("cancelled", state, data)
    return ExecutionUpdate("running", state, data)


class WorkflowTaskRunner:
    """Turns a claimed workflow task into one atomic commit (or a release with the reason)."""

    def __init__(self, client: ClientPort, owner: str, workflows: dict[str, WorkflowDefinition],
                 actions: dict[str, ActionDefinition], cache: InstanceCache,
                 action_runner: ActionTaskRunner, inline_budget: float,
                 snapshot_every: int = 0, snapshots_kept: int = 1,
                 telemetry: Telemetry | None = None) -> None:
        self.store = client.store
        self.telemetry = telemetry or Telemetry(client.store, client.clock, None)
        self.client = client
        self.clock = client.clock
        self.owner = owner
        self.workflows = workflows
        self.actions = actions
        # the routes of the actions it hosts (``Worker`` sets them): what it may run inline
        self.hosted_actions: frozenset[str] = frozenset(actions)
        self.guard = Sampler("warn")  # the run-time guard's mode (``Worker`` sets it)
        self.cache = cache
        self.action_runner = action_runner
        self.inline_budget = inline_budget  # seconds an inline attempt may take; 0 disables
        self.holds: Holds | None = None  # what limited actions run inline under (``Worker``)
        self.snapshot_every = snapshot_every  # events between snapshots; 0 disables
        self.snapshots_kept = snapshots_kept
        self.slots: ActionSlots | None = None  # the worker's, while it runs: eager actions

    async def run(self, task: WorkflowTask) -> None:
        """Run the task; conflicts retry from fresh history, failures release it with backoff."""
        key, watch = (task.tenant, task.workflow_id), self.telemetry.workflow_task(task)
        try:
            for _ in range(_CONFLICT_RETRIES):
                if await self._attempt(task, key, watch):
                    return
                task = replace(task, history=None)  # the history moved on: read it afresh
            await self._release(task, "history kept changing; retrying later", delay=0.5)
        except (NonDeterminismError, HistoryError) as exc:  # held until code or rows are fixed
            watch.outcome = "held"
            logger.error("%s", exc)
            if not await self._fail_requests(task, exc):
                await self._release(task, safe_text(str(exc)), delay=_backoff(task.attempt))
        except Exception as exc:  # the store is down, a bug: give the task back and go on
            logger.exception("workflow task %s/%s failed", *key)
            if isinstance(exc, UnknownWorkflowError) and \
                    await self._fail_requests(task, exc):
                return
            await self._release(task, describe_error(exc),
                                delay=_backoff(task.attempt))
        finally:
            watch.end()

    async def _fail_requests(self, task: WorkflowTask, exc: Exception) -> bool:
        """The workflow cannot be loaded: answer its requests with why (nothing is recorded).

        Returns True when the execution has ended and its task was dropped: a query of an
        ended execution must not leave a task that fails again and again.
        """
        if not task.requested:
            return False
        try:
            pending = await self.store.pending_requests(task.tenant, task.workflow_id)
            await self.store.answer_requests(task.tenant, task.workflow_id,
                                             failure_replies(pending, exc), now=self.clock())
            record = await self.store.get_execution(task.tenant, task.workflow_id)
            if record is None or record.status not in TERMINAL_STATUSES:
                return False
            self.cache.take((task.tenant, task.workflow_id))
            return await self.store.finish_workflow_task(task, self.owner, record.last_seq + 1,
                                                         replies=[], now=self.clock())
        except Exception:
            logger.exception("could not answer the requests of %s/%s", task.tenant,
                             task.workflow_id)
            return False

    async def _release(self, task: WorkflowTask, error: str, delay: float) -> None:
        self.cache.take((task.tenant, task.workflow_id))
        try:
            await self.store.release_workflow_task(task, self.owner, delay=delay, error=error,
                                                   now=self.clock())
        except Exception:
            logger.exception("could not release workflow task; its lease will expire")

    async def settle(self, action: ActionTask, outcome: ActionCompleted | ActionFailed) -> bool:
        """Record an action's outcome with the workflow task it makes due, run here at once on
        the instance this worker holds: one commit for both, no task row, no hint, no claim
        (``Settled``). False when the instance is not here or is running, or the commit found
        an input or a request waiting, the history moved on or the action's lease gone: then
        nothing was written, and the caller records the outcome alone."""
        key = (action.tenant, action.workflow_id)
        entry = self.cache.peek(key)
        if entry is None or entry.instance.done or entry.instance.info.run_id != action.run_id:
            return False
        info = entry.instance.info
        event = replace(outcome, seq=entry.seq + 1, time=self.clock())
        task = WorkflowTask(action.tenant, action.workflow_id, info.workflow, history=[event],
                            after_seq=entry.seq, run_id=action.run_id, queue=info.queue)
        watch = self.telemetry.workflow_task(task)
        settled = False
        try:
            settled = await self._attempt(task, key, watch, Settled(action, event))
        except Exception:  # recorded alone: its workflow task then runs as any other
            logger.debug("could not settle %s/%s here", *key, exc_info=True)
        finally:
            if not settled and watch.outcome == "released":
                watch.outcome = "refused"
            watch.end()
        return settled

    async def _attempt(self, task: WorkflowTask, key: tuple[str, str], watch: TaskWatch,
                       settled: Settled | None = None) -> bool:
        entry, inputs = await self._load(task, key, watch)
        watch.loaded(entry.instance._started, inputs)
        info = entry.instance.info
        commit = TaskCommit(task, info.run_id, entry.seq, info.priority, info.fairness_key)
        await self._activate(entry, commit, inputs)
        if task.requested:
            await self._answer(task, entry, commit)
        commit.replies += orphan_replies(entry.instance)
        if entry.instance.done and commit.events:
            commit.end(entry.instance)
        if not commit.events:  # it only answered requests: the execution stays as it is
            await self._route(task, entry, commit)
            committed = await self.store.finish_workflow_task(
                task, self.owner, entry.seq + 1, replies=commit.replies, now=self.clock())
        else:
            committed = await self._commit(task, entry, commit, settled)
        if not committed:
            entry.instance.close()
            return False
        watch.outcome = "committed"
        every, before = self.snapshot_every, entry.seq
        entry.seq += len(commit.events)
        snapshot = (_snapshot(task, entry, commit)
                    if every and entry.seq // every > before // every else None)
        done = entry.instance.done
        evicted = self.cache.put(key, entry)
        refs = commit.refs()
        if refs:
            await self.client.publish(refs)
        if snapshot is not None:
            await self._save(snapshot)
        if done:  # whoever held its route, and whichever worker finished it
            await self._unroute(self.client.dispatcher.forget, task.tenant, task.workflow_id)
        for tenant, workflow_id in evicted:
            await self._unroute(self._drop_route, tenant, workflow_id)
        return True

    async def _activate(self, entry: Cached, commit: TaskCommit, inputs: list[Event]) -> None:
        """Run batches until the workflow waits (inline actions' outcomes are the next ones)."""
        for round_ in range(_INLINE_ROUNDS):
            commit.measure(entry.instance)
            if not inputs:
                break
            now = self.clock()
            # The workflow's time never goes back, whatever the clocks of the workers that
            # ran its earlier tasks said: a clock behind the last one recorded is clamped.
            entry.time = time = max(now, entry.time)
            instance = entry.instance
            instance.determinism = self.guard.mode_for(instance.info.workflow, entry.at)
            activation = instance.activate(inputs, time)
            if activation.error is not None:
                entry.instance.close()
                raise activation.error
            # The last round queues its actions: an inline outcome recorded now would be an
            # input that no workflow task is left to run.
            last = round_ == _INLINE_ROUNDS - 1
            at = entry.instance.suspended_at()
            recorded, entry.at = (None if at == entry.at else at), at
            inline = commit.add(activation.commands, time, now,
                                _never if last else self._inline, recorded)
            inputs = [] if entry.instance.done else await self._run_inline(commit, inline)
        commit.measure(entry.instance)

    async def _commit(self, task: WorkflowTask, entry: Cached, commit: TaskCommit,
                      settled: Settled | None) -> bool:
        """Commit the task. Eager dispatch: the new actions this worker hosts are created
        leased to it, as many as it has free slots for, and started once committed (no hint,
        no claim); the others are published for any worker to claim."""
        slots, now = self.slots, self.clock()
        eager = [] if slots is None or entry.instance.done else \
            [a for a in commit.actions.values() if a.visible_at <= now and self._eager(a)]
        commit.leased = eager[:slots.reserve(len(eager), task.tenant)] \
            if slots and eager else []
        held = await self._hold(commit) if commit.leased else []
        await self._route(task, entry, commit)
        committed = False
        try:
            committed = await self.store.commit_workflow_task(task, commit.record(
                self.owner, _update(entry.instance), now, now + self.action_runner.lease,
                settled))
        finally:
            if slots is not None and commit.leased:
                if committed:
                    slots.run_reserved(commit.leased)
                else:  # nothing was written (or, if the store failed after writing, the
                    slots.unreserve(len(commit.leased))  # leases lapse: run elsewhere)
                    if held and self.holds is not None:
                        self.holds.release(held)
        return committed

    async def _hold(self, commit: TaskCommit) -> list[ActionTask]:
        """Of the eager actions with limits, keep leased those that get a slot and a token of
        each of their limits (``_holds``, held until the attempt ends: ``Worker`` gives them
        back), and give the others' reserved slots back: they are claimed under their
        limits. The limited ones it holds for."""
        holds, slots = self.holds, self.slots
        limited = [] if holds is None else [a for a in commit.leased if holds.buckets(a)]
        if not limited or holds is None or slots is None:
            return []
        admitted = await holds.admit(limited)
        refused = {a.cmd for a in limited} - {a.cmd for a in admitted}
        if refused:
            commit.leased = [a for a in commit.leased if a.cmd not in refused]
            slots.unreserve(len(refused))
        return admitted

    def _eager(self, action: ActionTask) -> bool:
        """Whether a new action due now can start here at once, leased by its commit: this
        worker hosts it (one with limits only under held slots and tokens, ``_hold``; a retry
        waits for its backoff as a task, claimed once due)."""
        defn = self.actions.get(action.name)
        return defn is not None and route(action.name, action.queue) in self.hosted_actions \
            and (self.holds is not None or defn.limit is None)

    async def _answer(self, task: WorkflowTask, entry: Cached, commit: TaskCommit) -> None:
        """Validate pending updates and run the accepted ones, then answer pending queries.

        A run that just continued as new leaves them to the next run (its task re-arms them).
        """
        if type(entry.instance.outcome) is ContinueAsNew:
            return
        pending = await self.store.pending_requests(task.tenant, task.workflow_id)
        accepted, replies = admit_updates(entry.instance, pending)
        commit.replies += replies  # "accepted" before the outcomes of the handlers
        if accepted:
            await self._activate(entry, commit, commit.accept(accepted, self.clock()))
        commit.replies += answer_queries(entry.instance, pending)

    async def _save(self, snapshot: Snapshot) -> None:
        """Best effort: time travel works without a snapshot, only reading more."""
        try:
            await self.store.save_snapshot(snapshot, keep=self.snapshots_kept)
        except Exception:
            logger.warning("could not save a snapshot of %s/%s", snapshot.tenant,
                           snapshot.workflow_id, exc_info=True)

    async def _route(self, task: WorkflowTask, entry: Cached, commit: TaskCommit) -> None:
        """Sticky execution: route the execution's next hints here (renewed when it runs
        out), before the commit makes the task's outcome visible so that the next hint follows
        it; not while the run waits only for actions leased here (``settles_here``)."""
        if entry.routed_until <= monotonic() and not entry.instance.done \
                and not commit.settles_here():
            entry.routed_until = await self._stick(task)

    async def _stick(self, task: WorkflowTask) -> float:
        """Sticky execution: ask for this execution's next tasks; until when (monotonic) the
        route surely holds (0.0 if it could not be set)."""
        try:
            ttl = await self.client.dispatcher.stick(self.owner, task.tenant, task.workflow_id,
                                                     keep=True)
        except Exception:  # without it the next task goes to any worker, which replays
            logger.warning("could not route %s/%s to this worker", task.tenant, task.workflow_id,
                           exc_info=True)
            return 0.0
        return monotonic() + ttl / 2

    async def _drop_route(self, tenant: str, workflow_id: str) -> None:
        await self.client.dispatcher.stick(self.owner, tenant, workflow_id, keep=False)

    async def _unroute(self, how: Callable[[str, str], Awaitable[None]], tenant: str,
                       workflow_id: str) -> None:
        """Remove a sticky route (best effort: an unremoved one expires)."""
        try:
            await how(tenant, workflow_id)
        except Exception:
            logger.warning("could not remove the route of %s/%s", tenant, workflow_id,
                           exc_info=True)

    def _inline(self, action: ActionTask) -> bool:
        """Whether this worker runs the action inside the workflow task (a local fast path)."""
        defn = self.actions.get(action.name)
        if self.inline_budget <= 0 or defn is None or defn.inline is False or defn.transaction \
                or defn.heartbeat_timeout is not None \
                or route(action.name, action.queue) not in self.hosted_actions \
                or (self.holds is None and defn.limit is not None):
            return False  # a database action commits with its own transaction, not the task's
        # A thread cannot be stopped: a plain function only if its timeout ends it in time.
        limit = self.inline_budget if defn.is_async else min(self.inline_budget, INLINE_BUDGET)
        return defn.inline is True or (defn.timeout is not None and defn.timeout <= limit)

    async def _run_inline(self, commit: TaskCommit, actions: list[ActionTask]) -> list[Event]:
        """Run first attempts now; their outcomes are the next batch's inputs. Attempts that
        run long are queued as soon as a request or an input waits for this execution."""
        if not actions:
            return []

        async def interrupted() -> bool:
            task = commit.task
            record, requests = await asyncio.gather(
                self.store.get_execution(task.tenant, task.workflow_id),
                self.store.pending_requests(task.tenant, task.workflow_id))
            unanswered = {r.id for r in requests} - {r.id for r in commit.replies}
            return record is None or record.last_seq != commit.expected_seq - 1 \
                or bool(unanswered)

        budget = min(self.inline_budget, INLINE_BUDGET)
        # A limited action runs inline only while it holds slots and tokens of its limits
        # (``_holds``); the others stay queued.
        if self.holds is not None:
            actions = await self.holds.admit(actions)
        try:
            outcomes = await self.action_runner.run_inline(actions, budget, interrupted)
        finally:
            if self.holds is not None:
                self.holds.release(actions)
        return commit.record_inline(outcomes, self.clock())

    async def _load(self, task: WorkflowTask, key: tuple[str, str],
                    watch: TaskWatch) -> tuple[Cached, list[Event]]:
        """The instance brought up to date, and the inputs it has not run yet."""
        entry = self.cache.take(key)
        if entry is not None and entry.instance.done and not await self._same_run(task, entry):
            entry.instance.close()  # a new run under the id (client.start's id policies)
            entry = None
        if entry is not None:
            # Its own run's events: if another worker continued the execution as new, the
            # old run shows that worker's commit, and the instance is rebuilt.
            try:
                new = await self._history(task, entry.seq, entry.instance.info.run_id)
            except BaseException:  # a damaged history, the store down: not cached any more
                entry.instance.close()
                raise
            if all(type(e) in _INPUTS for e in new):
                entry.seq += len(new)
                entry.instance.history_size.recorded(new)
                watch.replayed(None)
                return entry, new
            entry.instance.close()  # someone else advanced it: rebuild from history
        events = await self._history(task, 0)
        instance, began = self._instance(task, events), perf_counter()
        inputs, failed = replay(instance, events)
        watch.replayed(perf_counter() - began)
        if failed is not None:
            instance.close()
            raise failed.error  # type: ignore[misc]
        recorded = max((e.time for e in events if type(e) is TaskCompleted), default=0.0)
        return Cached(instance, len(events), recorded), inputs

    async def _same_run(self, task: WorkflowTask, entry: Cached) -> bool:
        """Whether the task is of the run that an ended instance ran."""
        run_id = entry.instance.info.run_id
        if task.run_id:
            return task.run_id == run_id
        record = await self.store.get_execution(task.tenant, task.workflow_id)
        return record is not None and record.run_id == run_id

    async def _history(self, task: WorkflowTask, after_seq: int,
                       run_id: str | None = None) -> list[Event]:
        """The events of run ``run_id`` (default: the current one) after ``after_seq``: those
        the claim brought along, else read."""
        if task.history is not None and task.after_seq <= after_seq and (
                run_id is None or run_id == task.run_id):
            return [e for e in task.history if e.seq > after_seq]
        return await self.store.read_history(task.tenant, task.workflow_id, run_id=run_id,
                                             after_seq=after_seq)

    def _instance(self, task: WorkflowTask, events: list[Event]) -> WorkflowInstance:
        if not events or type(events[0]) is not WorkflowStarted:
            raise HistoryError(f"history of {task.workflow_id!r} does not start with WorkflowStarted")
        started: Any = events[0]
        defn = self.workflows.get(started.workflow)
        if defn is None:
            raise UnknownWorkflowError(f"this worker has no workflow {started.workflow!r}",
                                       name=started.workflow)
        return WorkflowInstance(defn, started, self.actions)
