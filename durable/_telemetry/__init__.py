"""What a worker tells operators: Prometheus metrics (``_metrics``), log lines that name their
execution (``_logs``) and OpenTelemetry spans (``_tracing``).

``Telemetry`` is the worker's one entry: the runners call it at a few points of each workflow
task (``TaskWatch``) and each action attempt (``action_started``). With metrics off and no
tracer provider, a hook is a context-variable set and a test or two: the replay and the
activation in between are never touched.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import OrderedDict
from time import perf_counter, time_ns
from typing import TYPE_CHECKING, Any, Callable, Final, Sequence

from .._history import Event, TimerFired, WorkflowStarted
from .._queues import unroute
from ._logs import LogContext, configure_logging, log_context
from ._tracing import TRACING

if TYPE_CHECKING:
    from .._clock import Clock
    from .._stores import ActionTask, Store, WorkflowTask
    from ._metrics import WorkerMetrics
    from ._otel import Span

__all__ = ["TaskWatch", "Telemetry", "configure_logging"]

_TRACES_KEPT: Final = 10_000  # runs whose recorded trace a worker remembers


def _tracing_on() -> bool:
    return TRACING is not None and TRACING.enabled()


class Telemetry:
    """A worker's metrics (None: off) and the traces of the runs it saw lately."""

    def __init__(self, store: Store, clock: Clock, metrics: WorkerMetrics | None) -> None:
        self.store = store
        self.clock = clock
        self.metrics = metrics
        self.held: set[tuple[str, str]] = set()  # (tenant, workflow_id) held here, not since run
        # Invariant: the ``trace`` of run (tenant, workflow_id, run_id)'s WorkflowStarted.
        self._traces: OrderedDict[tuple[str, str, str], str | None] = OrderedDict()

    def workflow_task(self, task: WorkflowTask) -> TaskWatch:
        """Start watching one workflow task (``TaskWatch.end`` ends it)."""
        return TaskWatch(self, task)

    def remember(self, started: WorkflowStarted) -> None:
        """Note the trace a run recorded, for the attempts of its actions."""
        key = (started.tenant, started.workflow_id, started.run_id)
        self._traces[key] = started.trace
        self._traces.move_to_end(key)
        if len(self._traces) > _TRACES_KEPT:
            self._traces.popitem(last=False)

    async def trace_of(self, task: ActionTask) -> str | None:
        """The trace of the run that scheduled ``task``: remembered, else (tracing only) read
        from its ``WorkflowStarted``."""
        key = (task.tenant, task.workflow_id, task.run_id)
        if key in self._traces or not _tracing_on():
            return self._traces.get(key)
        try:
            events = await self.store.read_history(task.tenant, task.workflow_id,
                                                   run_id=task.run_id, limit=1)
        except Exception:  # traced as a root span rather than not run
            return None
        if events and type(events[0]) is WorkflowStarted:
            self.remember(events[0])
        return self._traces.get(key)

    def action_started(self, task: ActionTask, how: str, trace: str | None,
                       context: contextvars.Context) -> Callable[[asyncio.Future[Any]], None] | None:
        """An attempt of ``task`` starts in ``context`` (its task's or thread's): its log
        lines name the execution, its span is current there; the callback for its end."""
        running = log_context.get()  # inline: the workflow task's, which knows the trace
        if trace is None and running is not None and running.workflow_id == task.workflow_id:
            trace = running.trace
        context.run(log_context.set, LogContext(task.workflow_id, task.run_id, task.tenant, trace))
        span = None
        if _tracing_on():
            assert TRACING is not None
            span = TRACING.start(f"durable.action {task.name}", trace, {
                "durable.attempt": task.attempt, "durable.workflow_id": task.workflow_id,
                "durable.how": how}, kind="internal" if how == "inline" else "consumer",
                nested=how == "inline")
            TRACING.attach_in(context, span)
        metrics = self.metrics
        if span is not None and not span.is_recording():  # not sampled: nothing to end
            span = None
        if metrics is None and span is None:
            return None
        if metrics is not None:
            metrics.action_attempts.inc(task.name, how)
            if task.visible_at > 0:
                metrics.schedule_to_start.observe(max(0.0, self.clock() - task.visible_at),
                                                  "action")
        began = perf_counter()

        def ended(call: asyncio.Future[Any]) -> None:
            error = asyncio.CancelledError() if call.cancelled() else call.exception()
            if metrics is not None:
                metrics.action_seconds.observe(perf_counter() - began, task.name, how)
                if error is not None:
                    metrics.action_failures.inc(task.name)
            if span is not None:
                assert TRACING is not None
                TRACING.end(span, error)

        return ended


class TaskWatch:
    """One workflow task, watched: its log context from the start, its span and metrics once
    its instance is loaded (``loaded``), all closed by ``end``."""

    __slots__ = ("_telemetry", "_task", "_began", "_began_ns", "_log", "_span", "_token",
                 "_replayed", "workflow", "outcome")

    def __init__(self, telemetry: Telemetry, task: WorkflowTask) -> None:
        self._telemetry = telemetry
        self._task = task
        self._began = perf_counter()
        self._began_ns = time_ns()
        self._log = log_context.set(LogContext(task.workflow_id, task.run_id, task.tenant))
        self._span: Span | None = None
        self._token: object = None
        self._replayed = False
        self.workflow = unroute(task.workflow)[0]
        self.outcome = "released"  # until it commits, or is held

    def replayed(self, seconds: float | None) -> None:
        """The instance came from the cache (None) or a replay of ``seconds``."""
        metrics = self._telemetry.metrics
        self._replayed = self._replayed or seconds is not None
        if metrics is not None:
            metrics.cache_lookups.inc("hit" if seconds is None else "miss")
            if seconds is not None:
                metrics.replay_seconds.observe(seconds, self.workflow)

    def loaded(self, started: WorkflowStarted, inputs: Sequence[Event]) -> None:
        """The instance of run ``started`` is up to date and will run ``inputs``."""
        telemetry, task = self._telemetry, self._task
        telemetry.remember(started)
        self.workflow = started.workflow
        log_context.set(LogContext(task.workflow_id, started.run_id, task.tenant, started.trace))
        if telemetry.metrics is not None and inputs:
            waited = telemetry.clock() - min(e.time for e in inputs)
            telemetry.metrics.schedule_to_start.observe(max(0.0, waited), "workflow")
        if self._span is None and _tracing_on():
            assert TRACING is not None
            self._span = TRACING.start(f"durable.workflow_task {started.workflow}", started.trace, {
                "durable.workflow_id": task.workflow_id, "durable.run_id": started.run_id,
                "durable.tenant": task.tenant, "durable.replayed": self._replayed},
                kind="consumer", start_ns=self._began_ns, nested=False)
            self._token = TRACING.attach(self._span)
            for event in inputs:
                if type(event) is TimerFired:
                    TRACING.end(TRACING.start(f"durable.timer_fired {event.cmd}", None,
                                              {"durable.cmd": event.cmd},
                                              start_ns=int(event.time * 1e9)))

    def end(self, error: BaseException | None = None) -> None:
        """The task ended as ``outcome`` says (``error``: it raised)."""
        telemetry, key = self._telemetry, (self._task.tenant, self._task.workflow_id)
        if self.outcome == "held":
            telemetry.held.add(key)
        elif self.outcome == "committed":
            telemetry.held.discard(key)
        metrics = telemetry.metrics
        if metrics is not None:
            metrics.workflow_task_seconds.observe(perf_counter() - self._began,
                                                  self.workflow)
            metrics.workflow_tasks.inc(self.workflow, self.outcome)
        if self._span is not None:
            assert TRACING is not None
            self._span.set_attribute("durable.outcome", self.outcome)
            TRACING.detach(self._token)
            TRACING.end(self._span, error)
        log_context.reset(self._log)
