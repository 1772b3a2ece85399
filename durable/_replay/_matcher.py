"""Replay's matching, in one place: each command workflow code issues is paired with the next
command event the history recorded, or the divergence is reported.

``Matcher.match(kind, fields)`` is the one operation: issue the command ``kind(*fields)``.
Live (no recorded batch), the command is new: it is numbered and kept for the commit. In
replay, the next recorded event must be the command's: of its kind and with the field that
names it equal (``RULES``: an action's or child's name, a cancellation's command number, a
``ctx.data`` key). Then the cursor moves on and the event is returned, for the caller to
compare the values that may change (see :meth:`Matcher.changed`); otherwise the
``NonDeterminismError`` is recorded, with the recorded event, the new command and the
``file:line`` that issued it, and workflow code is unwound. A new kind of command is one
entry in ``RULES``. (The command is made only when it is recorded or reported: replay, the
hot path, makes none.)

Invariants: only this module moves the cursor (``at``) and numbers commands (``count``);
``Patched`` markers number no command; the first divergence wins; once the run has ended
(a terminal command was issued) nothing more is recorded.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Callable, Generator, Sequence
from typing import Any, Final, NamedTuple, NoReturn

from .._history import (
    ActionCancelRequested, ActionScheduled, CancelAction, CancelChild, CancelExternal,
    CancelTimer, CancelWorkflow, ChildCancelRequested, ChildInitiated, Command, CompleteUpdate,
    CompleteWorkflow, ContinueAsNew, DataChanged, Event, ExternalCancelRequested,
    ExternalSignalled, FailWorkflow, MarkPatched, Patched, ScheduleAction, SetData, SetState,
    SignalExternal, StartChild, StartTimer, StateChanged, TimerCancelled,
    TimerStarted, UpdateCompleted, WorkflowCancelled, WorkflowCompleted, WorkflowContinuedAsNew,
    WorkflowFailed,
)
from ..errors import NonDeterminismError
from ._info import Abort, NonDeterminismWarning, WorkflowInfo, frames_outside, user_location

__all__ = ["CANCELLATIONS", "RULES", "UNMATCHED", "Matcher", "Rule"]

class Rule(NamedTuple):
    """How a kind of command is matched with the event that recorded it."""

    event: type[Event]
    name: int = -1  # which of the command's fields names it (-1: none; its kind alone)
    ends: bool = False  # it ends the run
    optional: bool = False  # an older history may lack it: replay goes on without


# Command kind -> its rule. Invariant: a command's fields are its event's after seq and time,
# in order (``_Command.to_event``), so the field that names one names the other.
RULES: Final[dict[type[Command], Rule]] = {
    ScheduleAction: Rule(ActionScheduled, name=1),
    CancelAction: Rule(ActionCancelRequested, name=0, optional=True),
    StartTimer: Rule(TimerStarted),
    CancelTimer: Rule(TimerCancelled, name=0),
    StartChild: Rule(ChildInitiated, name=1),
    CancelChild: Rule(ChildCancelRequested, name=0),
    SignalExternal: Rule(ExternalSignalled, name=0),
    CancelExternal: Rule(ExternalCancelRequested, name=0),
    SetState: Rule(StateChanged),
    SetData: Rule(DataChanged, name=0),
    CompleteUpdate: Rule(UpdateCompleted, name=0),
    CompleteWorkflow: Rule(WorkflowCompleted, ends=True),
    FailWorkflow: Rule(WorkflowFailed, ends=True),
    CancelWorkflow: Rule(WorkflowCancelled, ends=True),
    ContinueAsNew: Rule(WorkflowContinuedAsNew, ends=True),
}
# A rule as a tuple, with the name of the event's field that names it, for the hot path.
_FAST: Final = {kind: (rule.event, rule.name, rule.event.__struct_fields__[rule.name + 2],
                       rule.ends)
                for kind, rule in RULES.items()}

UNMATCHED: Final = object()  # see Matcher.match(refusable=True)

# Recorded where the loop went idle (live, cancellations are found then), not where issued.
CANCELLATIONS: Final = (ActionCancelRequested, ChildCancelRequested)


class Matcher:
    """The replay cursor of one workflow instance, and the commands of its activation."""

    __slots__ = ("info", "strict", "commands", "recorded", "replaying", "at", "count", "history",
                 "error", "done", "outcome", "patches")

    def __init__(self, info: WorkflowInfo, strict: bool) -> None:
        self.info = info
        self.strict = strict  # every changed value is an error, not a warning
        self.commands: list[Command] = []  # issued in this activation (live)
        self.recorded: Sequence[Event] | None = None  # this batch's command events (replay)
        self.replaying = False
        self.at = 0  # the next recorded event to match
        self.count = 0  # commands issued or matched so far: the next one's number
        self.history: Sequence[Event] = ()  # what ``replay`` replays (to look ahead in it)
        self.error: NonDeterminismError | None = None
        self.done = False
        self.outcome: Command | None = None  # the terminal command, once issued
        # patch id -> whether this run takes its new path; decided once per run (ctx.patched)
        self.patches: dict[str, bool] = {}

    def begin(self, recorded: Sequence[Event] | None) -> list[Command]:
        """Start an activation (``recorded``: the batch's command events, in replay)."""
        commands: list[Command] = []
        self.commands = commands
        self.recorded = recorded
        self.replaying = recorded is not None
        self.at = 0
        return commands

    # ---- matching -----------------------------------------------------------------------

    def match(self, kind: type[Command], fields: tuple[Any, ...] = (),
              where: str | None = None, *, refusable: bool = False) -> Any:
        """Issue the command ``kind(*fields)``.

        Live: it is recorded (None is returned). Replay: the recorded event it matches is
        consumed and returned (the command itself is not even made), or the divergence is
        reported and the workflow code unwound; ``where`` names the code that issued it (by
        default, the innermost frame of the workflow's own code). Nothing is recorded after a
        divergence or once the run has ended.

        ``refusable``: the command's arguments were not checked (replay skips the checks a
        recorded command passed). Where nothing matches, ``UNMATCHED`` is returned instead of
        the divergence: the caller checks the arguments now (a call refused live recorded
        nothing, and must raise again) and then calls :meth:`unmatched`.
        """
        event_kind, name, field, ends = _FAST[kind]
        recorded = self.recorded
        if recorded is None:
            if not self.done:
                command = kind(*fields)
                self.count += 1
                self.commands.append(command)
                if ends:
                    self.done, self.outcome = True, command
            return None
        if self.error is not None:
            return None
        at = self.at
        event = recorded[at] if at < len(recorded) else None
        if type(event) is event_kind and (name < 0 or getattr(event, field) == fields[name]):
            self.at = at + 1
            if not self.done:
                self.count += 1
                if ends:
                    self.done, self.outcome = True, kind(*fields)
            return event
        if type(event) is Patched:  # the code no longer asks about this patch: skip it
            self.take_markers()
            return self.match(kind, fields, where, refusable=refusable)
        if RULES[kind].optional or self.done:
            return None  # an older history without it, or what follows the end
        if refusable:
            return UNMATCHED
        self.diverge(event, kind(*fields), where or user_location(sys._getframe(1)))

    def unmatched(self, kind: type[Command], fields: tuple[Any, ...]) -> NoReturn:
        """Report the divergence of a command ``match`` found ``UNMATCHED``."""
        self.diverge(self.next_event(), kind(*fields), user_location(sys._getframe(1)))

    def put_back(self) -> None:
        """Undo the match just made: the command raised before it took effect (its
        arguments, checked as live, are refused), so the recorded event waits for the next."""
        self.at -= 1
        self.count -= 1

    def next_event(self) -> Event | None:
        """Replay: the next recorded event not matched yet (None: none, or live)."""
        recorded = self.recorded
        if recorded is None or self.at >= len(recorded):
            return None
        return recorded[self.at]

    def take_markers(self) -> None:
        """Replay: consume the ``Patched`` markers here; their patches are taken."""
        event = self.next_event()
        while type(event) is Patched:
            self.patches[event.patch_id] = True
            self.at += 1
            event = self.next_event()

    def patched(self, patch_id: str) -> bool:
        """Whether this run takes the new path of patch ``patch_id`` (see ``ctx.patched``)."""
        known = self.patches.get(patch_id)
        if known is not None:
            return known
        if self.recorded is None:  # live: the new code path, from here on
            self.commands.append(MarkPatched(patch_id))  # a marker: it numbers no command
            self.patches[patch_id] = True
            return True
        self.take_markers()
        return self.patches.setdefault(patch_id, False)

    # ---- differences ----------------------------------------------------------------------

    def changed(self, recorded: Event, command: Command, what: str, detail: str = "",
                same: Callable[[Event], bool] | None = None) -> None:
        """``command`` matched ``recorded`` by kind and name, but ``what`` differs.

        An error when an event recorded later is the new command exactly (``same``): the code
        issued its commands in another order than recorded, and a recorded outcome would go
        to the wrong one. A ``NonDeterminismWarning`` otherwise (the new value is kept for the
        rest of the run); an error in strict mode.
        """
        frame, depth = frames_outside(sys._getframe(1))
        location = user_location(frame)
        reordered = same is not None and self._recorded_later(recorded, same)
        if reordered or self.strict:
            self.at -= 1  # report the recorded event that the command did not match
            self.count -= 1
            why = ("a later recorded command has exactly the new values: the code issued "
                   "these commands in another order than recorded, so a recorded outcome would "
                   "go to the wrong one (is an order taken from a set?)" if reordered else
                   "replay is strict: every change is an error")
            self.diverge(recorded, command, f"{location} ({what} changed{detail}; {why})")
        info = self.info
        warnings.warn(f"workflow {info.workflow!r} (id {info.workflow_id!r}): {what} changed "
                      f"since it was recorded{detail}, at {location}", NonDeterminismWarning,
                      stacklevel=depth + 1)

    def _recorded_later(self, recorded: Event, same: Callable[[Event], bool]) -> bool:
        history = self.history
        if not history:
            return False
        start = recorded.seq - history[0].seq + 1
        return any(same(event) for event in history[max(start, 0):])

    # ---- divergence -------------------------------------------------------------------------

    def diverge(self, recorded: Event | None, command: Command | None, location: str) -> NoReturn:
        """Record the divergence and unwind the workflow code that caused it."""
        self.record_divergence(recorded, command, location)
        raise Abort()

    def record_divergence(self, recorded: Event | None, command: Command | None,
                          location: str) -> None:
        """Record a divergence (the first one wins); the activation returns it."""
        if self.error is None:
            info = self.info
            self.error = NonDeterminismError(
                f"workflow {info.workflow!r} (id {info.workflow_id!r}) diverged from its history "
                f"at command #{self.count}:\n"
                f"  recorded: {describe(recorded)}\n"
                f"  now:      {describe(command)} at {location}\n"
                "Workflow code must issue the same commands on every replay: keep the old "
                "behaviour for executions recorded before the change. The execution is held "
                "until code that matches its history is deployed.",
                recorded=recorded, command=command, location=location,
                workflow_id=info.workflow_id,
            )

    @contextlib.contextmanager
    def read_only(self, commands: list[Command]) -> Generator[None]:
        """Run code whose commands go to ``commands`` (which refuses them), then restore."""
        saved = (self.commands, self.count, self.recorded, self.replaying)
        self.commands, self.recorded, self.replaying = commands, None, False
        try:
            yield
        finally:
            self.commands, self.count, self.recorded, self.replaying = saved


def describe(item: Any) -> str:
    """An event or command for a message: kind, seq, and what names it."""
    if item is None:
        return "nothing"
    error = getattr(item, "error", None)
    if error is not None:
        return f"{type(item).__name__} ({error.type}: {error.message})"
    name = (getattr(item, "name", None) or getattr(item, "workflow", None)
            or getattr(item, "state", None) or getattr(item, "key", None)
            or getattr(item, "patch_id", None))
    seq = getattr(item, "seq", None)
    where = f" (seq {seq})" if seq is not None else ""
    return f"{type(item).__name__}{where}" + (f" {name!r}" if name else "")
