"""What a workflow task's commit does to other runs and executions (``Store`` starts/signals).

* ``continue_as_new``: the next run of the execution starts in the same transaction, with the
  events the run received but did not take yet.
"""

from __future__ import annotations

from collections.abc import Sequence

from msgspec.structs import replace

from .._history import ContinueAsNew, WorkflowStarted
from .._replay import WorkflowInstance
from .._stores import Signal, Start, TaskRef, workflow_ref

__all__ = ["continuation", "effect_refs"]


def continuation(instance: WorkflowInstance) -> tuple[list[Start], list[Signal]]:
    """The next run, if the run ended with ``continue_as_new``, and the events it carries."""
    outcome = instance.outcome
    if type(outcome) is not ContinueAsNew:
        return [], []
    info, defn = instance.info, instance.defn
    started = WorkflowStarted(1, 0.0, defn.name, defn.version, info.workflow_id, outcome.run_id,
                              info.tenant, outcome.args, outcome.kwargs,
                              continued_from=info.run_id)
    carried = [Signal(info.tenant, info.workflow_id, replace(event, seq=0, time=0.0),
                      None if event.key is None else f"e{event.key}", outcome.run_id)
               for event in instance.unconsumed_events()]
    return [Start(started)], carried


def effect_refs(tenant: str, workflow_id: str, starts: Sequence[Start],
                signals: Sequence[Signal]) -> list[TaskRef]:
    """Hints for the workflow tasks a commit's starts and signals may have made runnable."""
    keys = {(s.started.tenant, s.started.workflow_id) for s in starts}
    if any(s.on_started is not None or s.on_exists is not None for s in starts):
        keys.add((tenant, workflow_id))
    keys.update((s.tenant, s.workflow_id) for s in signals)
    return [workflow_ref(*key) for key in sorted(keys)]
