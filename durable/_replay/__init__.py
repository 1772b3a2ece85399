"""The deterministic runtime: pure, synchronous, no I/O.

``replay(instance, events)`` feeds a recorded history to an instance batch by batch, exactly
as the original run saw it, and returns the inputs that arrived after the last recorded
workflow task (the next live batch).
"""

from __future__ import annotations

import gc
from typing import Final, Sequence

from .._history import INPUT_TYPES, Event, TaskCompleted, WorkflowTerminated
from ._instance import Activation, NonDeterminismWarning, WorkflowInfo, WorkflowInstance

__all__ = ["Activation", "NonDeterminismWarning", "WorkflowInfo", "WorkflowInstance", "replay"]

_INPUTS: Final = frozenset(INPUT_TYPES)
# What ends the command events of a batch: the next batch's inputs or its end, or the end of
# a run terminated from outside (``WorkflowTerminated``: no command of the code's, nothing
# after it to replay; it is handed back with the inputs not yet run, which the instance ignores).
_BATCH_ENDS: Final = _INPUTS | {TaskCompleted, WorkflowTerminated}


# Histories longer than this replay with the cyclic GC paused: a replay makes objects that
# all live until it ends (the coroutine's futures and tasks, the events' argument lists), and
# collections that walk them all again and again cost a long replay up to a third of its time.
_GC_PAUSE_EVENTS: Final = 2_000


def replay(instance: WorkflowInstance, events: Sequence[Event],
           start: int = 0) -> tuple[list[Event], Activation | None]:
    """Replay ``events[start:]``; return (inputs not yet run, the failed activation or None)."""
    pause = len(events) - start > _GC_PAUSE_EVENTS and gc.isenabled()
    if pause:
        gc.disable()  # synchronous: nothing else runs in this thread until it is enabled again
    try:
        instance.matcher.history = events
        instance.history_size.replaying(events)
        with instance.entered():
            return _replay(instance, events, start)
    finally:
        if pause:
            gc.enable()


def _replay(instance: WorkflowInstance, events: Sequence[Event],
            start: int) -> tuple[list[Event], Activation | None]:
    inputs: list[Event] = []
    i, n = start, len(events)
    activate = instance.activate
    while i < n:
        event = events[i]
        kind = type(event)
        if kind is TaskCompleted:
            j = i + 1
            while j < n and type(events[j]) not in _BATCH_ENDS:
                j += 1
            activation = activate(inputs, event.time, events[i + 1:j])
            if activation.error is not None:
                return inputs, activation
            inputs = []
            i = j
        else:
            inputs.append(event)
            i += 1
    return inputs, None
