"""What a workflow task's commit does to other runs and executions (``Store`` starts/signals).

* ``continue_as_new``: the next run of the execution starts in the same transaction, with the
  events the run received but did not take yet.
* ``start_child``: the child execution is created, and the store tells the parent whether it
  was (``ChildStarted``) or its id was taken (``ChildStartFailed``).
* ``ChildHandle.cancel()``, and the end of a parent's run for its children of policy
  "cancel": ``CancelRequested`` for the child.
* the end of a child's run (not a continuation): its outcome, to the parent run that started
  it (``ChildCompleted`` / ``ChildFailed`` / ``ChildCancelled``).
"""

from __future__ import annotations

from collections.abc import Sequence

from msgspec.structs import replace

from .._history import (
    CancelChild, CancelExternal, CancelRequested, CancelWorkflow, ChildCancelled, ChildCompleted,
    ChildFailed, ChildStarted, ChildStartFailed, CompleteWorkflow, ContinueAsNew, Event,
    EventReceived, FailWorkflow, ParentRef, SignalExternal, StartChild, WorkflowStarted,
)
from .._queues import route
from .._replay import WorkflowInstance
from .._stores import Signal, Start, TaskRef, WorkflowTask, workflow_ref
from .._telemetry._logs import log_context
from .._telemetry._tracing import child_trace

__all__ = ["child_cancel", "child_start", "continuation", "effect_refs", "ending",
           "external_signal"]


def child_start(task: WorkflowTask, run_id: str, command: StartChild) -> Start:
    """The child execution a ``StartChild`` creates, and what the parent is told; the child
    joins the parent's trace (under a child-start span when tracing)."""
    running = log_context.get()  # the parent's workflow task's
    trace = child_trace(command.workflow, command.workflow_id,
                        None if running is None else running.trace)
    started = WorkflowStarted(1, 0.0, command.workflow, command.version, command.workflow_id,
                              command.run_id, task.tenant, command.args, command.kwargs,
                              parent=ParentRef(task.workflow_id, run_id, command.cmd),
                              queue=command.queue, priority=command.priority,
                              fairness_key=command.fairness_key, trace=trace)
    return Start(started, on_started=ChildStarted(0, 0.0, command.cmd),
                 on_exists=ChildStartFailed(0, 0.0, command.cmd))


def child_cancel(task: WorkflowTask, command: CancelChild) -> Signal:
    """The ``CancelRequested`` a ``CancelChild`` sends (once per child run: dedup "cancel")."""
    return Signal(task.tenant, command.workflow_id, CancelRequested(0, 0.0, command.reason),
                  "cancel", command.run_id)


def external_signal(task: WorkflowTask, run_id: str,
                    command: SignalExternal | CancelExternal) -> Signal:
    """The input a ``ctx.external(id)`` command appends to the target's current run: an event
    (once: dedup by the sender's run and command) or a cancellation (once per target run)."""
    if type(command) is CancelExternal:
        return Signal(task.tenant, command.workflow_id, CancelRequested(0, 0.0, command.reason),
                      "cancel")
    assert type(command) is SignalExternal
    event = EventReceived(0, 0.0, command.name, command.payload, None, command.metadata)
    return Signal(task.tenant, command.workflow_id, event, f"x{run_id}/{command.cmd}")


def ending(instance: WorkflowInstance) -> tuple[list[Start], list[Signal]]:
    """What the end of the run does elsewhere: the next run (continue-as-new), the report to
    the parent, the cancellation of the children that end with it."""
    starts, signals = continuation(instance)
    report = _report(instance)
    if report is not None:
        signals.append(report)
    info = instance.info
    reason = f"its parent workflow {info.workflow_id!r} ended"
    signals += [Signal(info.tenant, workflow_id, CancelRequested(0, 0.0, reason), "cancel", run)
                for workflow_id, run in instance.children.to_cancel_at_close()]
    return starts, signals


def _report(instance: WorkflowInstance) -> Signal | None:
    """A child's outcome for its parent's run, unless the child only continued as new."""
    parent, outcome = instance.parent, instance.outcome
    if parent is None:
        return None
    event: Event
    if type(outcome) is CompleteWorkflow:
        event = ChildCompleted(0, 0.0, parent.cmd, outcome.result)
    elif type(outcome) is FailWorkflow:
        event = ChildFailed(0, 0.0, parent.cmd, outcome.error)
    elif type(outcome) is CancelWorkflow:
        event = ChildCancelled(0, 0.0, parent.cmd)
    else:
        return None  # continued as new: the next run reports
    return Signal(instance.info.tenant, parent.workflow_id, event, f"c{parent.cmd}",
                  parent.run_id)


def continuation(instance: WorkflowInstance) -> tuple[list[Start], list[Signal]]:
    """The next run, if the run ended with ``continue_as_new``, and the events it carries."""
    outcome = instance.outcome
    if type(outcome) is not ContinueAsNew:
        return [], []
    info, defn = instance.info, instance.defn
    started = WorkflowStarted(1, 0.0, defn.name, defn.version, info.workflow_id, outcome.run_id,
                              info.tenant, outcome.args, outcome.kwargs,
                              continued_from=info.run_id, parent=instance.parent,
                              queue=info.queue, priority=info.priority,
                              fairness_key=info.fairness_key, trace=instance._started.trace)
    carried = [Signal(info.tenant, info.workflow_id, replace(event, seq=0, time=0.0),
                      None if event.key is None else f"e{event.key}", outcome.run_id)
               for event in instance.unconsumed_events()]
    return [Start(started)], carried


def effect_refs(tenant: str, workflow_id: str, starts: Sequence[Start],
                signals: Sequence[Signal]) -> list[TaskRef]:
    """Hints for the workflow tasks a commit's starts and signals may have made runnable
    (with their workflow's route where the commit knows it: the executions it starts)."""
    keys = {(s.started.tenant, s.started.workflow_id): route(s.started.workflow, s.started.queue)
            for s in starts}
    if any(s.on_started is not None or s.on_exists is not None for s in starts):
        keys.setdefault((tenant, workflow_id), "")
    for s in signals:
        keys.setdefault((s.tenant, s.workflow_id), "")
    return [workflow_ref(*key, name) for key, name in sorted(keys.items())]
