"""What the engine's parts share: the run's facts, an activation's outcome, the exceptions that
unwind workflow code, and where in the workflow's own code something happened."""

from __future__ import annotations

import asyncio
import os
from types import FrameType
from typing import Any, Final, NamedTuple

from .._history import CancelWorkflow, Command, CompleteWorkflow, ContinueAsNew, FailWorkflow
from ..errors import NonDeterminismError

__all__ = ["INTERNAL", "TERMINAL", "Abort", "Activation", "ContinueAsNewRequest",
           "NonDeterminismWarning", "ParentInfo", "WorkflowInfo", "frames_outside",
           "user_location"]

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


class WorkflowInfo(NamedTuple):
    """Facts about the running execution (``ctx.info``).

    ``version`` is the one the run started with; ``continued_from`` the run this one
    continues (``ctx.continue_as_new``), if any; ``queue`` the task queue it runs on;
    ``priority`` and ``fairness_key`` what its tasks are claimed by (see ``client.start``);
    ``parent`` the workflow that started it as its child (None for an execution a client
    started): ``ctx.external(ctx.info.parent.workflow_id)`` writes to it.
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
