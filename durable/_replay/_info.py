"""What the engine's parts share: the run's facts, an activation's outcome, the exceptions that
unwind workflow code, and where in the workflow's own code something happened."""

from __future__ import annotations

import asyncio
import os
from collections import deque
from types import FrameType
from typing import Any, Final, NamedTuple, Sequence

import msgspec

from .._history import (
    CancelWorkflow, Command, CompleteWorkflow, ContinueAsNew, Event, FailWorkflow)
from ..errors import NonDeterminismError

__all__ = ["CONTINUE_AS_NEW_BYTES", "CONTINUE_AS_NEW_EVENTS", "INTERNAL", "TERMINAL", "Abort",
           "Activation", "ContinueAsNewRequest", "HistorySize", "NonDeterminismWarning",
           "ParentInfo", "WorkflowInfo", "frames_outside", "user_location"]

_PACKAGE_DIR: Final = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INTERNAL: Final = (_PACKAGE_DIR, os.path.dirname(asyncio.__file__))  # not the workflow's code
TERMINAL: Final = (CompleteWorkflow, FailWorkflow, CancelWorkflow, ContinueAsNew)


class NonDeterminismWarning(UserWarning):
    """Replay matched a command by kind and name, but a value of it changed (its arguments, a
    timer's duration, a state or a ``ctx.data`` value) in a way that hands no recorded outcome
    to another command."""


class Abort(BaseException):
    """Unwinds workflow code after a divergence; user code cannot swallow it by accident."""


class ContinueAsNewRequest(BaseException):
    """Raised by ``ctx.continue_as_new``: unwinds the workflow, which then ends this run.

    A ``BaseException``, so that ``except Exception`` in workflow code does not swallow it.
    """

    def __init__(self, args: list[Any], kwargs: dict[str, Any]) -> None:
        super().__init__("continue as new")
        self.payload = (args, kwargs)


class Activation(NamedTuple):
    """What one activation produced: new commands, or the divergence that stopped it."""

    commands: list[Command]
    error: NonDeterminismError | None


class ParentInfo(NamedTuple):
    """The parent of a child workflow (``ctx.info.parent``): its workflow id, and the run that
    started this child."""

    workflow_id: str
    run_id: str


# Past either, ``ctx.info.continue_as_new_suggested`` is True (Temporal warns at the same).
CONTINUE_AS_NEW_EVENTS: Final = 10_240
CONTINUE_AS_NEW_BYTES: Final = 10 * 1024 * 1024
_size_of: Final = msgspec.msgpack.Encoder().encode


class HistorySize:
    """How long a run's history is as of the activation running now: the events up to its
    newest input (``length``, a seq) and their size as MessagePack (``bytes()``).

    Both follow from the recorded history alone, so replay sees the values the original run
    saw. Replayed events are measured only when ``bytes()`` is asked for (replay does not pay
    for it); a worker hands the events it records or reads live to ``recorded``.
    """

    __slots__ = ("length", "_replayed", "_at", "_bytes", "_later")

    def __init__(self) -> None:
        self.length = 0
        self._replayed: Sequence[Event] = ()  # what replay fed, measured up to ``_at``
        self._at = 0
        self._bytes = 0  # of the events with seq <= length measured so far
        self._later: deque[tuple[int, int]] = deque()  # (seq, size) of live events past it

    def replaying(self, events: Sequence[Event]) -> None:
        """Replay feeds ``events`` (a run's history from its first event)."""
        self._replayed, self._at = events, 0

    def recorded(self, events: Sequence[Event]) -> None:
        """Events a worker records or reads after those replayed (with their seqs)."""
        self._collect()
        later = self._later
        for event in events:
            later.append((event.seq, len(_size_of(event))))

    def bytes(self) -> int:
        """The size of the events with ``seq <= length``."""
        replayed, length = self._replayed, self.length
        at = self._at
        while at < len(replayed) and replayed[at].seq <= length:
            self._bytes += len(_size_of(replayed[at]))
            at += 1
        self._at = at
        self._collect()
        return self._bytes

    def _collect(self) -> None:
        later = self._later
        while later and later[0][0] <= self.length:
            self._bytes += later.popleft()[1]


class WorkflowInfo(NamedTuple):
    """Facts about the running execution (``ctx.info``).

    ``version`` is the one the run started with; ``continued_from`` the run this one
    continues (``ctx.continue_as_new``), if any; ``queue`` the task queue it runs on;
    ``priority`` and ``fairness_key`` what its tasks are claimed by (see ``client.start``);
    ``parent`` the workflow that started it as its child (None for an execution a client
    started): ``ctx.external(ctx.info.parent.workflow_id)`` writes to it.

    ``history_length`` and ``history_bytes`` measure this run's history up to the newest
    input the workflow has been given (its events as MessagePack, before any payload codec);
    ``continue_as_new_suggested`` is True past 10,240 events or 10 MiB. Being derived from
    the recorded history, each is the same on replay.
    """

    workflow_id: str
    run_id: str
    tenant: str
    workflow: str
    version: str
    attempt: int = 1
    continued_from: str | None = None
    queue: str = "default"  # the task queue of its workflow tasks
    priority: int = 0
    fairness_key: str | None = None
    parent: ParentInfo | None = None
    history_size: HistorySize | None = None  # kept up to date by the instance

    @property
    def history_length(self) -> int:
        """The number of events in this run's history up to the newest input seen."""
        return 0 if self.history_size is None else self.history_size.length

    @property
    def history_bytes(self) -> int:
        """The size in bytes of those events (MessagePack, before any payload codec)."""
        return 0 if self.history_size is None else self.history_size.bytes()

    @property
    def continue_as_new_suggested(self) -> bool:
        """Whether the history is past 10,240 events or 10 MiB: time to continue as new."""
        return self.history_length > CONTINUE_AS_NEW_EVENTS or \
            self.history_bytes > CONTINUE_AS_NEW_BYTES


def frames_outside(frame: FrameType | None) -> tuple[FrameType | None, int]:
    """The innermost frame from ``frame`` outwards that is the workflow's own code (neither
    durable's nor asyncio's), and how many frames out it is (1: ``frame`` itself)."""
    depth = 1
    while frame is not None and frame.f_code.co_filename.startswith(INTERNAL):
        frame, depth = frame.f_back, depth + 1
    return frame, depth


def user_location(frame: FrameType | None) -> str:
    """``file:line`` of the innermost frame from ``frame`` outwards that is the workflow's."""
    found, _ = frames_outside(frame)
    return "<unknown>" if found is None else f"{found.f_code.co_filename}:{found.f_lineno}"
