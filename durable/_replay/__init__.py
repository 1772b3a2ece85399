"""The deterministic runtime: pure, synchronous, no I/O.

``replay(instance, events)`` feeds a recorded history to an instance batch by batch, exactly
as the original run saw it, and returns the inputs that arrived after the last recorded
workflow task (the next live batch).
"""

from __future__ import annotations

import gc
import re
from typing import Final, Sequence, get_args

from .._history import INPUT_TYPES, Event, TaskCompleted, WorkflowTerminated
from ._ahead import Ahead
from ._instance import Activation, NonDeterminismWarning, WorkflowInfo, WorkflowInstance

__all__ = ["Activation", "NonDeterminismWarning", "WorkflowInfo", "WorkflowInstance", "replay"]

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
    loop = instance._loop
    outer = loop.enter()  # entered once for all the batches (instance.entered(), inlined)
    try:
        instance.matcher.history = events
        instance.history_size.replaying(events)
        return _replay(instance, events, start)
    finally:
        loop.leave(outer)
        if pause:
            gc.enable()


def _replay(instance: WorkflowInstance, events: Sequence[Event],
            start: int) -> tuple[list[Event], Activation | None]:
    activate = instance.replay_batch
    outline = _outline(events)
    if outline.find("T", start) >= 0:  # a batch to replay: replay mode, as ``activate`` sets
        instance.matcher.begin(())  # it (``replay_batch`` sets only what changes per batch)
    batches = _BATCH.finditer(outline, start)
    # An action call or event wait awaited may take the next batches itself (``_ahead``):
    # ``ahead.ends`` says where the batches it took end.
    ahead = instance.calls.ahead = instance.inbox.ahead = Ahead(
        events, batches, instance.matcher, instance._loop, instance._condition_waits,
        instance.take_input, instance.calls.pending, instance.history_size)
    ahead.ends = start  # where the next batch begins: its inputs, up to its TaskCompleted
    try:
        for batch in batches:
            i, t, end = ahead.ends, batch.start(1), batch.end()
            ahead.begins, ahead.ends, ahead.after = i, end, end + 1
            failed = activate(events[i:t], events[t].time, events[t + 1:end])
            if failed is not None:
                i = ahead.begins
                return list(events[i:outline.index("T", i)]), failed
        return list(events[ahead.ends:]), None
    finally:
        instance.calls.ahead = instance.inbox.ahead = None
        ahead.ends = -1  # a call still pending after the replay takes no batch any more


def _outline(events: Sequence[Event]) -> str:
    """One letter per event: ``I`` an input, ``T`` a ``TaskCompleted``, ``C`` a command event,
    ``X`` the end of a run terminated from outside (``WorkflowTerminated``). Made in C (no Python code runs per event); ``_BATCH`` then finds the batches in it."""
    try:
        return "".join(map(_LETTERS.__getitem__, map(type, events)))
    except KeyError:  # a kind this module does not know (a subclass): as the slow way did
        return "".join(_LETTERS.get(type(e), "C") for e in events)


_LETTERS: Final[dict[type, str]] = {kind: "C" for kind in get_args(Event)}
_LETTERS.update(dict.fromkeys(INPUT_TYPES, "I"))
_LETTERS[TaskCompleted] = "T"
_LETTERS[WorkflowTerminated] = "X"
# One batch (an activation): everything before its TaskCompleted (its inputs), then the
# command events it recorded, up to the next input, TaskCompleted or WorkflowTerminated (no
# command of the code's, nothing after it to replay). What follows the last batch matches no
# more: the inputs not yet run (and a WorkflowTerminated, which the instance ignores).
_BATCH: Final = re.compile(r"[^T]*(T)[^ITX]*")
