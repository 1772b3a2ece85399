"""History events (past tense) and the commands that produce them (imperative).

An execution's history is a list of events with a dense ``seq`` (1, 2, 3 …). Events are of two
kinds:

* inputs come from outside the coroutine: ``WorkflowStarted``, ``ActionCompleted``,
  ``ActionFailed``, ``TimerFired``, ``EventReceived``, ``CancelRequested``, ``UpdateAccepted``,
  and what became of the child workflows it started (``ChildStarted``, ``ChildStartFailed``,
  ``ChildCompleted``, ``ChildFailed``, ``ChildCancelled``);
* command events record what the coroutine did: ``ActionScheduled``, ``ActionCancelRequested``,
  ``TimerStarted``, ``TimerCancelled``, ``ChildInitiated``, ``ChildCancelRequested``,
  ``StateChanged``, ``DataChanged``, ``Patched``, ``UpdateCompleted`` and the terminal events.

``TaskCompleted`` closes a batch: the inputs since the previous one were fed to the coroutine
together, at the clock it carries; the command events after it are what that activation issued.

Schema evolution: events are MessagePack arrays (``array_like``): new fields go last, defaulted.
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

import msgspec

from ._options import CallOptions
from .errors import HistoryError

__all__ = [
    "ActionCancelRequested", "ActionCompleted", "ActionFailed", "ActionScheduled",
    "CancelAction", "CancelChild", "CancelExternal", "CancelRequested", "CancelTimer",
    "CancelWorkflow", "ChildCancelRequested", "ChildCancelled", "ChildCompleted",
    "ChildFailed", "ChildInitiated", "ChildStartFailed", "ChildStarted", "Command",
    "CompleteUpdate", "CompleteWorkflow", "ContinueAsNew", "DataChanged", "ErrorInfo", "Event",
    "EventReceived", "ExternalCancelRequested", "ExternalSignalled", "FailWorkflow",
    "MarkPatched", "ParentRef", "Patched", "ScheduleAction", "SetData", "SetState",
    "SignalExternal", "StartChild", "StartTimer", "StateChanged", "TaskCompleted",
    "TimerCancelled", "TimerFired", "TimerStarted", "UpdateAccepted", "UpdateCompleted",
    "WorkflowCancelled", "WorkflowCompleted", "WorkflowContinuedAsNew", "WorkflowFailed",
    "WorkflowStarted", "WorkflowTerminated", "decode_event", "decode_history_json", "encode_event",
    "encode_history_json",
]


class ErrorInfo(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """An exception as history keeps it: its type name, message and formatted traceback."""

    type: str
    message: str
    traceback: str = ""


class ParentRef(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """Where a child workflow reports its end: the parent's run and the command that started it."""

    workflow_id: str
    run_id: str
    cmd: int


class _Event(msgspec.Struct, frozen=True, tag=True, array_like=True, gc=False):
    """Fields every event has: its position in the history and when it was written."""

    seq: int
    time: float  # seconds since the epoch, UTC


# ---- inputs ---------------------------------------------------------------------------------


class WorkflowStarted(_Event, frozen=True, tag=True, array_like=True):
    """The execution (or its next run) was created with these arguments.

    ``continued_from`` is the run this one continues (``ctx.continue_as_new``), if any;
    ``parent`` is set on a child workflow's runs (``ctx.start_child``). ``trace`` is the
    trace context its spans join (one trace per execution, its runs and its children).
    """

    workflow: str
    version: str
    workflow_id: str
    run_id: str
    tenant: str
    args: list[Any]
    kwargs: dict[str, Any] = {}
    continued_from: str | None = None
    parent: ParentRef | None = None
    queue: str = "default"  # the task queue of its workflow tasks (``_queues``)
    priority: int = 0  # its tasks' priority (higher first), kept across continue-as-new
    fairness_key: str | None = None  # its tasks take turns with other keys' of its tenant
    trace: str | None = None  # W3C traceparent of its start (``durable._telemetry._tracing``)
    previous_run: str | None = None  # the run it replaced under a reused id (client.start)


class TaskCompleted(_Event, frozen=True, tag=True, array_like=True):
    """A workflow task ran: it closes a batch of inputs; ``time`` is the workflow's clock.

    ``suspended_at`` is the ``file:line`` of the await the coroutine was suspended at once the
    batch had run; None when it is where the previous ``TaskCompleted`` says (or was not
    recorded). Replay never reads it: time travel reports it.
    """

    suspended_at: str | None = None


class ActionCompleted(_Event, frozen=True, tag=True, array_like=True):
    """The action scheduled by command ``cmd`` returned ``result`` (on attempt ``attempt``)."""

    cmd: int
    result: Any
    attempt: int = 1


class ActionFailed(_Event, frozen=True, tag=True, array_like=True):
    """The action scheduled by command ``cmd`` failed on its last attempt."""

    cmd: int
    error: ErrorInfo
    attempt: int = 1


class TimerFired(_Event, frozen=True, tag=True, array_like=True):
    """The timer started by command ``cmd`` fired."""

    cmd: int


class EventReceived(_Event, frozen=True, tag=True, array_like=True):
    """An external event arrived (``handle.send``); ``metadata`` says who sent it, or why."""

    name: str
    payload: Any = None
    key: str | None = None
    metadata: dict[str, Any] | None = None


class CancelRequested(_Event, frozen=True, tag=True, array_like=True):
    """``handle.cancel()`` was called."""

    reason: str = ""


class ChildStarted(_Event, frozen=True, tag=True, array_like=True):
    """The child workflow of command ``cmd`` was created (with the parent's commit)."""

    cmd: int


class ChildStartFailed(_Event, frozen=True, tag=True, array_like=True):
    """The child workflow of command ``cmd`` was not created: its workflow id is taken."""

    cmd: int


class ChildCompleted(_Event, frozen=True, tag=True, array_like=True):
    """The child workflow of command ``cmd`` returned ``result``."""

    cmd: int
    result: Any = None


class ChildFailed(_Event, frozen=True, tag=True, array_like=True):
    """The child workflow of command ``cmd`` raised."""

    cmd: int
    error: ErrorInfo


class ChildCancelled(_Event, frozen=True, tag=True, array_like=True):
    """The child workflow of command ``cmd`` ended cancelled."""

    cmd: int


class UpdateAccepted(_Event, frozen=True, tag=True, array_like=True):
    """Update ``name`` (request ``id``) passed its validator: its handler runs with ``args``.

    A worker records it in the commit of the workflow task that validated it; a rejected
    update leaves no event at all.
    """

    id: str
    name: str
    args: list[Any] = []


# ---- command events -------------------------------------------------------------------------


class ActionScheduled(_Event, frozen=True, tag=True, array_like=True):
    """Command ``cmd`` scheduled action ``name`` on ``queue`` with the call's ``options``."""

    cmd: int
    name: str
    args: list[Any]
    kwargs: dict[str, Any] = {}
    queue: str = "default"
    options: CallOptions | None = None


class ActionCancelRequested(_Event, frozen=True, tag=True, array_like=True):
    """The workflow stopped waiting for the action of command ``cmd`` (its future was cancelled).

    Its task is dropped; an attempt that is running is told at its next heartbeat. An outcome
    that still arrives is recorded, and ignored.
    """

    cmd: int


class TimerStarted(_Event, frozen=True, tag=True, array_like=True):
    """Command ``cmd`` started a durable timer due at ``fire_at`` (epoch seconds)."""

    cmd: int
    duration: float
    fire_at: float


class TimerCancelled(_Event, frozen=True, tag=True, array_like=True):
    """The timer started by command ``cmd`` was cancelled before it fired."""

    cmd: int


class ChildInitiated(_Event, frozen=True, tag=True, array_like=True):
    """Command ``cmd`` started child workflow ``workflow`` as execution ``workflow_id``.

    ``parent_close`` is what happens to the child when this workflow's run ends first:
    ``"cancel"`` (it is asked to cancel) or ``"abandon"`` (it goes on).
    """

    cmd: int
    workflow: str
    version: str
    workflow_id: str
    run_id: str
    args: list[Any]
    kwargs: dict[str, Any] = {}
    parent_close: str = "cancel"
    queue: str = "default"
    priority: int = 0  # the child's (its parent's unless the start gave one)
    fairness_key: str | None = None  # the child's (likewise)


class ChildCancelRequested(_Event, frozen=True, tag=True, array_like=True):
    """The workflow asked its child of command ``cmd`` to cancel (``CancelRequested`` there).

    ``run_id`` is the child run it targets while the child's start is not confirmed (None:
    whatever run of the child is current).
    """

    cmd: int
    workflow_id: str
    run_id: str | None = None
    reason: str = ""


class ExternalSignalled(_Event, frozen=True, tag=True, array_like=True):
    """The workflow sent event ``name`` to execution ``workflow_id`` (``ctx.external(id).send``;
    delivered with the commit that recorded this, once)."""

    cmd: int
    workflow_id: str
    name: str
    payload: Any = None
    metadata: dict[str, Any] | None = None


class ExternalCancelRequested(_Event, frozen=True, tag=True, array_like=True):
    """The workflow asked execution ``workflow_id`` to cancel (``ctx.external(id).cancel``)."""

    cmd: int
    workflow_id: str
    reason: str = ""


class StateChanged(_Event, frozen=True, tag=True, array_like=True):
    """``ctx.set_state(state)``."""

    state: str


class DataChanged(_Event, frozen=True, tag=True, array_like=True):
    """``ctx.data[key] = value`` (or ``del ctx.data[key]`` when ``deleted``)."""

    key: str
    value: Any = None
    deleted: bool = False


class Patched(_Event, frozen=True, tag=True, array_like=True):
    """``ctx.patched(patch_id)`` ran live here and took the new path (a marker, no effect).

    Replay answers ``patched(patch_id)`` True where this marker is, False where it is not;
    a marker that today's code no longer asks about is skipped.
    """

    patch_id: str


class UpdateCompleted(_Event, frozen=True, tag=True, array_like=True):
    """The handler of update ``id`` returned ``result`` (or raised: ``error``)."""

    id: str
    name: str
    result: Any = None
    error: ErrorInfo | None = None


class WorkflowCompleted(_Event, frozen=True, tag=True, array_like=True):
    """The workflow returned ``result``."""

    result: Any = None


class WorkflowContinuedAsNew(_Event, frozen=True, tag=True, array_like=True):
    """The run ended by starting run ``run_id`` of the same execution with these arguments."""

    run_id: str
    args: list[Any]
    kwargs: dict[str, Any] = {}


class WorkflowFailed(_Event, frozen=True, tag=True, array_like=True):
    """The workflow raised."""

    error: ErrorInfo


class WorkflowCancelled(_Event, frozen=True, tag=True, array_like=True):
    """The workflow ended because it was cancelled."""


class WorkflowTerminated(_Event, frozen=True, tag=True, array_like=True):
    """The run was ended from outside, its code not run again: run ``run_id`` replaced it
    (``client.start(on_conflict="terminate_existing")``). Replay stops here."""

    reason: str
    run_id: str


Event = (
    WorkflowStarted
    | TaskCompleted
    | ActionCompleted
    | ActionFailed
    | TimerFired
    | EventReceived
    | CancelRequested
    | ChildStarted
    | ChildStartFailed
    | ChildCompleted
    | ChildFailed
    | ChildCancelled
    | UpdateAccepted
    | ActionScheduled
    | ActionCancelRequested
    | TimerStarted
    | TimerCancelled
    | ChildInitiated
    | ChildCancelRequested
    | ExternalSignalled
    | ExternalCancelRequested
    | StateChanged
    | DataChanged
    | Patched
    | UpdateCompleted
    | WorkflowCompleted
    | WorkflowFailed
    | WorkflowCancelled
    | WorkflowContinuedAsNew
    | WorkflowTerminated
)

INPUT_TYPES: Final = (
    WorkflowStarted,
    ActionCompleted,
    ActionFailed,
    TimerFired,
    EventReceived,
    CancelRequested,
    ChildStarted,
    ChildStartFailed,
    ChildCompleted,
    ChildFailed,
    ChildCancelled,
    UpdateAccepted,
)
TERMINAL_TYPES: Final = (WorkflowCompleted, WorkflowFailed, WorkflowCancelled,
                         WorkflowContinuedAsNew, WorkflowTerminated)


# ---- commands -------------------------------------------------------------------------------


class _Command(msgspec.Struct, frozen=True, gc=False):
    # gc=False: a command is made for every step (replay matches them too) and refers to no
    # object that could refer back to it, so the cyclic GC need not track it.
    event: ClassVar[type[Any]]

    def to_event(self, seq: int, time: float) -> Event:
        """The event that records this command at ``seq``."""
        return self.event(seq, time, *msgspec.structs.astuple(self))  # type: ignore[no-any-return]


class ScheduleAction(_Command, frozen=True):
    """Run action ``name`` (recorded as ``ActionScheduled``)."""

    event = ActionScheduled
    cmd: int
    name: str
    args: list[Any]
    kwargs: dict[str, Any] = {}
    queue: str = "default"
    options: CallOptions | None = None


class CancelAction(_Command, frozen=True):
    """Stop an action call the workflow no longer waits for (``ActionCancelRequested``)."""

    event = ActionCancelRequested
    cmd: int


class StartTimer(_Command, frozen=True):
    """Start a durable timer (recorded as ``TimerStarted``)."""

    event = TimerStarted
    cmd: int
    duration: float
    fire_at: float


class CancelTimer(_Command, frozen=True):
    """Cancel a timer that has not fired (recorded as ``TimerCancelled``)."""

    event = TimerCancelled
    cmd: int


class StartChild(_Command, frozen=True):
    """Start a child workflow (recorded as ``ChildInitiated``)."""

    event = ChildInitiated
    cmd: int
    workflow: str
    version: str
    workflow_id: str
    run_id: str
    args: list[Any]
    kwargs: dict[str, Any] = {}
    parent_close: str = "cancel"
    queue: str = "default"
    priority: int = 0  # the child's (its parent's unless the start gave one)
    fairness_key: str | None = None  # the child's (likewise)


class CancelChild(_Command, frozen=True):
    """Ask a child workflow to cancel (recorded as ``ChildCancelRequested``)."""

    event = ChildCancelRequested
    cmd: int
    workflow_id: str
    run_id: str | None = None
    reason: str = ""


class SignalExternal(_Command, frozen=True):
    """Send an event to another execution (recorded as ``ExternalSignalled``)."""

    event = ExternalSignalled
    cmd: int
    workflow_id: str
    name: str
    payload: Any = None
    metadata: dict[str, Any] | None = None


class CancelExternal(_Command, frozen=True):
    """Ask another execution to cancel (recorded as ``ExternalCancelRequested``)."""

    event = ExternalCancelRequested
    cmd: int
    workflow_id: str
    reason: str = ""


class SetState(_Command, frozen=True):
    """Change the workflow's named state (recorded as ``StateChanged``)."""

    event = StateChanged
    state: str


class SetData(_Command, frozen=True):
    """Change one key of ``ctx.data`` (recorded as ``DataChanged``)."""

    event = DataChanged
    key: str
    value: Any = None
    deleted: bool = False


class MarkPatched(_Command, frozen=True):
    """Record that the code took the new path of a patch (recorded as ``Patched``)."""

    event = Patched
    patch_id: str


class CompleteUpdate(_Command, frozen=True):
    """Answer update ``id`` with a result or an error (recorded as ``UpdateCompleted``)."""

    event = UpdateCompleted
    id: str
    name: str
    result: Any = None
    error: ErrorInfo | None = None


class CompleteWorkflow(_Command, frozen=True):
    """End the workflow with a result (recorded as ``WorkflowCompleted``)."""

    event = WorkflowCompleted
    result: Any = None


class FailWorkflow(_Command, frozen=True):
    """End the workflow with an error (recorded as ``WorkflowFailed``)."""

    event = WorkflowFailed
    error: ErrorInfo


class CancelWorkflow(_Command, frozen=True):
    """End the workflow as cancelled (recorded as ``WorkflowCancelled``)."""

    event = WorkflowCancelled


class ContinueAsNew(_Command, frozen=True):
    """End the run and start the next one (recorded as ``WorkflowContinuedAsNew``)."""

    event = WorkflowContinuedAsNew
    run_id: str
    args: list[Any]
    kwargs: dict[str, Any] = {}


Command = (
    ScheduleAction | CancelAction | StartTimer | CancelTimer | StartChild | CancelChild
    | SignalExternal | CancelExternal | SetState | SetData | MarkPatched | CompleteUpdate | CompleteWorkflow | FailWorkflow | CancelWorkflow
    | ContinueAsNew
)

# One encoder and decoder for the process (msgspec performance tips).
_encoder: Final = msgspec.msgpack.Encoder()
_decoder: Final = msgspec.msgpack.Decoder(Event)
_json_encoder: Final = msgspec.json.Encoder()
_json_decoder: Final = msgspec.json.Decoder(list[Event])

encode_event = _encoder.encode
# What decoding bytes that are not an event raises: malformed MessagePack or JSON, a value of
# the wrong type (msgspec.ValidationError is a DecodeError), nesting deeper than the stack.
_UNDECODABLE: Final = (msgspec.DecodeError, RecursionError, UnicodeError, ValueError, TypeError)


def decode_event(data: bytes) -> Event:
    """The event encoded in ``data`` (by :func:`encode_event`); ``HistoryError`` if it is not
    one."""
    try:
        return _decoder.decode(data)
    except _UNDECODABLE as exc:
        raise _undecodable("not a durable event", data, exc) from None


def encode_history_json(events: list[Event]) -> bytes:
    """Export a history as JSON, each event an array (``durable.testing.save_history``)."""
    return _json_encoder.encode(events)


def decode_history_json(data: bytes | str) -> list[Event]:
    """Read a history exported with :func:`encode_history_json`; ``HistoryError`` if ``data``
    is not one."""
    try:
        return _json_decoder.decode(data)
    except _UNDECODABLE as exc:
        raise _undecodable("not a durable history in JSON", data, exc) from None


def _undecodable(what: str, data: Any, exc: BaseException) -> HistoryError:
    reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
    kind = type(data).__name__
    if isinstance(data, (bytes, bytearray, memoryview, str)):
        length: int = len(data)  # pyright: ignore[reportUnknownArgumentType]
        size = f"{length} {'characters' if kind == 'str' else 'bytes'}"
    else:
        size = f"a {kind}"
    return HistoryError(f"{what}: {reason} (in {size}); the history is malformed (written by "
                        "an incompatible version, or damaged)", reason=reason)
