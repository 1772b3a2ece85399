"""One live workflow coroutine and the deterministic machinery around it.

``WorkflowInstance.activate(inputs, time, recorded)`` feeds one batch of inputs to the
coroutine, runs it until every task waits again, and returns the commands it issued. It does
no I/O and never raises: the worker (live) and the ``Replayer`` run this same code.

Replay mode (``recorded`` given): the batch was already run once and ``recorded`` holds the
command events it produced. Each command the code issues must match the next recorded one in
kind and name; the first that does not, or a recorded one that is never issued, ends the
activation with a ``NonDeterminismError`` that names the source line.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sys
import uuid
import warnings
from collections import deque
from typing import Any, Callable, Final, NamedTuple, Sequence

from .._definitions import ActionDefinition, WorkflowDefinition
from .._history import (
    ActionCancelRequested, ActionCompleted, ActionFailed, ActionScheduled, CancelAction,
    CancelRequested, CancelTimer, CancelWorkflow, ChildCancelRequested, Command, CompleteUpdate,
    CompleteWorkflow, ContinueAsNew, DataChanged, Event, EventReceived, FailWorkflow, MarkPatched,
    ParentRef, Patched, ScheduleAction, SetData, SetState, StartTimer, StateChanged,
    TimerCancelled, TimerFired, TimerStarted, UpdateAccepted, UpdateCompleted, WorkflowStarted,
)
from .._payloads import check_size, dump_value, error_info
from ..errors import (
    ActionFailedError, DurableError, IllegalWorkflowOperationError, NonDeterminismError,
)
from ._children import CHILD_INPUTS, Children
from ._handlers import Handlers
from ._loop import WorkflowLoop

__all__ = ["Activation", "ContinueAsNewRequest", "NonDeterminismWarning", "WorkflowInfo",
           "WorkflowInstance"]

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_ASYNCIO_DIR = os.path.dirname(asyncio.__file__)
_INTERNAL = (_PACKAGE_DIR, _ASYNCIO_DIR)  # frames that are not the workflow's own code


_TERMINAL = (CompleteWorkflow, FailWorkflow, CancelWorkflow, ContinueAsNew)
_CANCELLATIONS = (ActionCancelRequested, ChildCancelRequested)


class NonDeterminismWarning(UserWarning):
    """Replay matched a command by kind and name, but its arguments or duration changed."""


class _Abort(BaseException):
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


class WorkflowInfo(NamedTuple):
    """Facts about the running execution (``ctx.info``).

    ``version`` is the one the run started with; ``continued_from`` the run this one
    continues (``ctx.continue_as_new``), if any.
    """

    workflow_id: str
    run_id: str
    tenant: str
    workflow: str
    version: str
    attempt: int = 1
    continued_from: str | None = None


class _ReadOnly(list):  # type: ignore[type-arg]
    """Stands in for the command list and the ready queue while read-only code runs."""

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what

    def append(self, item: Any) -> None:
        kind = type(item).__name__
        raise IllegalWorkflowOperationError(
            f"{self.what} tried to change the workflow (a {kind}); query handlers and update "
            "validators only read its state: make changes in an update handler",
            operation=kind)


class _Waiter(NamedTuple):
    names: tuple[str, ...]
    future: asyncio.Future[Any]


def _same(recorded: Event | None, command: Command) -> bool:
    """Whether ``recorded`` is the event of ``command``: its kind and what names it."""
    if type(recorded) is not command.event:
        return False
    return all(getattr(recorded, field) == getattr(command, field)
               for field in _IDENTITY.intersection(command.__struct_fields__))


_IDENTITY: Final = frozenset({"cmd", "name", "key", "patch_id", "workflow"})


def _user_location(frame: Any) -> str:
    """``file:line`` of the innermost frame that is neither durable's nor asyncio's."""
    while frame is not None:
        path = frame.f_code.co_filename
        if not path.startswith(_INTERNAL):
            return f"{path}:{frame.f_lineno}"
        frame = frame.f_back
    return "<unknown>"


def _describe(item: Any) -> str:
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


class WorkflowInstance:
    """A workflow coroutine on its own deterministic loop, driven batch by batch."""

    def __init__(self, defn: WorkflowDefinition, started: WorkflowStarted,
                 actions: dict[str, ActionDefinition] | None = None, *,
                 strict: bool = False) -> None:
        from .._context import Context

        self.defn = defn
        self.info = WorkflowInfo(started.workflow_id, started.run_id, started.tenant,
                                 started.workflow, started.version,
                                 continued_from=started.continued_from)
        self.actions = actions or {}
        self.strict = strict
        self.replaying = False
        self.state: str | None = None
        self.data: dict[str, Any] = {}
        self.done = False
        self.outcome: Command | None = None  # the terminal command, once issued
        self._random: random.Random | None = None
        self._started = started
        self._loop = WorkflowLoop(self)
        self._main: asyncio.Task[Any] | None = None
        self._ncmd = 0
        self._commands: list[Command] = []
        self._recorded: Sequence[Event] | None = None
        self._ri = 0
        self.history: Sequence[Event] = ()  # what ``replay`` replays (to look ahead in it)
        self._error: NonDeterminismError | None = None
        self._pending: dict[int, tuple[asyncio.Future[Any], ActionDefinition]] = {}
        self._timers: dict[int, Any] = {}  # cmd -> the loop's timer handle (its ``_cmd``)
        self._inbox: deque[EventReceived] = deque()
        self._waiters: list[_Waiter] = []
        # patch id -> whether this run takes its new path; decided once per run (ctx.patched)
        self.patches: dict[str, bool] = {}
        self.children = Children(self)
        self._handlers: Handlers | None = None
        self.ctx = Context(self)

    # ---- driving ------------------------------------------------------------------------

    def activate(self, inputs: Sequence[Event], time: float,
                 recorded: Sequence[Event] | None = None) -> Activation:
        """Feed one batch of inputs at workflow time ``time``; return the commands issued."""
        commands: list[Command] = []
        self._commands = commands
        self._recorded = recorded
        self._ri = 0
        self.replaying = recorded is not None
        loop = self._loop
        loop._time = time
        if self._error is None:
            for event in inputs:
                self._apply(event)
            if self._error is None:  # applying an input can find a divergence
                loop.run_ready()
            if recorded is None:
                if self.children.by_cmd:
                    self._cancel_abandoned()
                for fut, _ in self._pending.values():
                    if fut.cancelled():
                        self._cancel_abandoned()
                        break
            elif self._ri < len(recorded) and self._error is None:
                self._rest_of_batch(recorded)
        # tuple.__new__ skips the generated, keyword-parsing __new__ (one per batch)
        return tuple.__new__(Activation, (commands, self._error))  # type: ignore[return-value]

    def _rest_of_batch(self, recorded: Sequence[Event]) -> None:
        """Replay: the batch recorded commands that the code has not issued.

        Cancellations of action calls come last in a batch (live, they are found once the
        loop is idle), so replay matches them here rather than looking after every batch.
        Anything else left over is a divergence.
        """
        try:
            if type(recorded[self._ri]) is Patched:
                self._take_markers()
            if self._ri < len(recorded) and type(recorded[self._ri]) in _CANCELLATIONS:
                self._cancel_abandoned()
            if self._ri < len(recorded):
                self._diverged(recorded[self._ri], None, self.suspended_at() or "<finished>")
        except _Abort:
            pass  # it is in self._error

    def _apply(self, event: Event) -> None:
        kind = type(event)
        if kind is ActionCompleted:
            entry = self._pending.pop(event.cmd, None)  # type: ignore[union-attr]
            if entry is not None and not entry[0].done():
                fut, defn = entry
                try:
                    fut.set_result(defn.result.load(event.result))  # type: ignore[union-attr]
                except DurableError as exc:
                    fut.set_exception(exc)
        elif kind is TimerFired:
            handle = self._timers.pop(event.cmd, None)  # type: ignore[union-attr]
            if handle is not None:
                self._loop._ready.append(handle)
        elif kind is EventReceived:
            self._deliver(event)  # type: ignore[arg-type]
        elif kind is ActionFailed:
            self._fail_action(event)  # type: ignore[arg-type]
        elif kind is WorkflowStarted:
            self._start()
        elif kind is CancelRequested:
            if self._main is not None and not self._main.done():
                self._main.cancel(getattr(event, "reason", None) or None)
        elif kind in CHILD_INPUTS:
            self.children.apply(event)
        elif kind is UpdateAccepted:
            self._accept_update(event)  # type: ignore[arg-type]

    def _start(self) -> None:
        started = self._started
        params = self.defn.params
        try:
            args, kwargs = params.load(started.args, started.kwargs)
            coro = self.defn.fn(self.ctx, *args, **kwargs)
        except Exception as exc:
            async def fail(exc: Exception = exc) -> Any:
                raise exc
            coro = fail()
        self._main = self._loop.create_task(coro, name=f"workflow {self.info.workflow_id}")
        self._main.add_done_callback(self._on_main_done)

    def _on_main_done(self, task: asyncio.Task[Any]) -> None:
        if self._error is not None:
            return
        code = self.defn.fn.__code__
        where = f"{code.co_filename}:{code.co_firstlineno} (return)"
        self._cancel_abandoned()
        if task.cancelled():
            self.issue(CancelWorkflow(), where)
            return
        exc = task.exception()
        if isinstance(exc, _Abort):
            return
        if isinstance(exc, ContinueAsNewRequest):
            self.issue(ContinueAsNew(self.next_run_id(), *exc.payload), where)
            return
        if exc is None:
            try:
                self.issue(CompleteWorkflow(self.defn.result.dump(task.result())), where)
                return
            except DurableError as err:
                exc = err
        tb = exc.__traceback__
        while tb is not None:
            if not tb.tb_frame.f_code.co_filename.startswith((_PACKAGE_DIR, _ASYNCIO_DIR)):
                where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno} (raise)"
            tb = tb.tb_next
        self.issue(FailWorkflow(error_info(exc)), where)

    # ---- commands -----------------------------------------------------------------------

    def _peek(self) -> Event | None:
        recorded = self._recorded
        if recorded is None or self._ri >= len(recorded):
            return None
        return recorded[self._ri]

    def issue(self, command: Command, location: str | None = None) -> None:
        """Issue a command: live, it is new; in replay it had to match and did not."""
        if self.done:
            self._after_the_end(command)
            return
        if self._recorded is None:
            self._ncmd += 1
            self._commands.append(command)
            if isinstance(command, _TERMINAL):
                self.done, self.outcome = True, command
            return
        recorded = self._peek()
        if type(recorded) is Patched:  # the code no longer asks about this patch: skip it
            self._take_markers()
            recorded = self._peek()
            if _same(recorded, command) and not isinstance(command, _TERMINAL):
                self._ri += 1
                self._ncmd += 1
                return
        # Terminal commands come here to be matched; the others have fast paths.
        if type(recorded) is command.event and isinstance(command, _TERMINAL):
            self._ri += 1
            self._ncmd += 1
            self.done, self.outcome = True, command
            return
        self._diverged(recorded, command, location or _user_location(sys._getframe(1)))

    def _after_the_end(self, command: Command) -> None:
        """The run has ended: what its other tasks still do (a timer cancelled by a
        ``finally``) is dropped. Replay skips it where an older version recorded it."""
        if self._recorded is not None and _same(self._peek(), command):
            self._ri += 1

    def _take_markers(self) -> None:
        """Replay: consume the ``Patched`` markers at this point; their patches are taken."""
        recorded = self._recorded
        assert recorded is not None
        while self._ri < len(recorded) and type(recorded[self._ri]) is Patched:
            self.patches[recorded[self._ri].patch_id] = True  # type: ignore[union-attr]
            self._ri += 1

    def patched(self, patch_id: str) -> bool:
        """Whether this run takes the new path of patch ``patch_id`` (see ``ctx.patched``)."""
        known = self.patches.get(patch_id)
        if known is not None:
            return known
        if self._recorded is None:  # live: the new code path, from here on
            self._commands.append(MarkPatched(patch_id))  # a marker: it numbers no command
            self.patches[patch_id] = True
            return True
        if type(self._peek()) is Patched:
            self._take_markers()
        return self.patches.setdefault(patch_id, False)

    def _diverged(self, recorded: Event | None, command: Command | None, location: str) -> None:
        """Record the divergence and unwind the workflow code that caused it."""
        self._divergence(recorded, command, location)
        raise _Abort()

    def _divergence(self, recorded: Event | None, command: Command | None, location: str) -> None:
        """Record a divergence (the first one wins); the activation returns it."""
        if self._error is None:
            info = self.info
            self._error = NonDeterminismError(
                f"workflow {info.workflow!r} (id {info.workflow_id!r}) diverged from its history "
                f"at command #{self._ncmd}:\n"
                f"  recorded: {_describe(recorded)}\n"
                f"  now:      {_describe(command)} at {location}\n"
                "Workflow code must issue the same commands on every replay: keep the old "
                "behaviour for executions recorded before the change. The execution is held "
                "until code that matches its history is deployed.",
                recorded=recorded, command=command, location=location,
                workflow_id=info.workflow_id,
            )

    def _changed(self, what: str, recorded: Event, command: Command,
                 confused: Callable[[Event], bool] | None = None, detail: str = "") -> None:
        """Replay matched ``command`` to ``recorded`` by kind and name, but ``what`` differs.

        An error when a later recorded command is the new one exactly (``confused``): the
        code issued its commands in another order than recorded, and the recorded outcome
        would go to the wrong one. A ``NonDeterminismWarning`` otherwise (a changed value,
        kept for the rest of the run); an error in strict mode.
        """
        frame = sys._getframe(1)
        location, level = _user_location(frame), 2
        while frame is not None and frame.f_code.co_filename.startswith(_INTERNAL):
            frame, level = frame.f_back, level + 1
        reordered = confused is not None and self._recorded_later(recorded, confused)
        if reordered or self.strict:
            self._ri -= 1  # report the recorded event that the command did not match
            self._ncmd -= 1
            why = ("a later recorded command has exactly the new values: the code issued "
                   "these commands in another order than recorded, so a recorded outcome would "
                   "go to the wrong one (is an order taken from a set?)" if reordered else
                   "replay is strict: every change is an error")
            self._diverged(recorded, command, f"{location} ({what} changed{detail}; {why})")
        warnings.warn(f"workflow {self.info.workflow!r} (id {self.info.workflow_id!r}): {what} "
                      f"changed since it was recorded{detail}, at {location}",
                      NonDeterminismWarning, stacklevel=level)

    def _recorded_later(self, recorded: Event, matches: Callable[[Event], bool]) -> bool:
        """Whether an event recorded after ``recorded`` (in this replay) ``matches``."""
        history = self.history
        if not history:
            return False
        start = recorded.seq - history[0].seq + 1
        return any(matches(event) for event in history[max(start, 0):])

    def schedule_action(self, defn: ActionDefinition, args: tuple[Any, ...],
                        kwargs: dict[str, Any]) -> asyncio.Future[Any]:
        """Issue ``ScheduleAction`` and return the future its completion resolves."""
        cmd = self._ncmd
        recorded, ri = self._recorded, self._ri
        recorded = recorded[ri] if recorded is not None and ri < len(recorded) else None
        if type(recorded) is ActionScheduled and recorded.name == defn.name:  # type: ignore[union-attr]
            # Plain values compare equal as they are; only others need normalizing first.
            a, r = list(args), recorded.args  # type: ignore[union-attr]
            changed = (a != r and dump_value(a, defn.name) != r) or (kwargs and (
                kwargs != recorded.kwargs  # type: ignore[union-attr]
                and dump_value(kwargs, defn.name) != recorded.kwargs))  # type: ignore[union-attr]
            if changed:  # as live, arguments the checks refuse schedule nothing, take nothing
                defn.params.dump(args, kwargs)
            self._ri += 1
            self._ncmd = cmd + 1
            if changed:
                self._action_changed(defn, recorded, args, kwargs)  # type: ignore[arg-type]
        else:
            a, k = defn.params.dump(args, kwargs)
            check_size([a, k], f"arguments of {defn.name}")
            self.issue(ScheduleAction(cmd, defn.name, a, k))
        fut = self._loop.create_future()
        self._pending[cmd] = (fut, defn)
        return fut

    def _action_changed(self, defn: ActionDefinition, recorded: ActionScheduled,
                        args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """An action call replayed with other arguments than recorded (see ``_changed``).

        The recorded arguments are read with today's signature first, so a change of the
        types alone (a field with a default added to a dataclass) is not a change.
        """
        a, k = defn.params.dump(args, kwargs)
        try:
            if defn.params.load(recorded.args, recorded.kwargs) == defn.params.load(a, k):
                return
        except DurableError:
            pass  # they no longer fit the signature: a change
        name = defn.name

        def same(event: Event) -> bool:
            return (type(event) is ActionScheduled and event.name == name
                    and event.args == a and event.kwargs == k)

        self._changed(f"the arguments of action {name!r}", recorded,
                      ScheduleAction(recorded.cmd, name, a, k), same,
                      f" ({recorded.args} -> {a})")

    def _cancel_abandoned(self) -> None:
        """Cancel the action calls, then the children, whose futures were cancelled."""
        self._cancel_abandoned_actions()
        if self.children.by_cmd and not self.done and self._error is None:
            self.children.cancel_abandoned()

    def _cancel_abandoned_actions(self) -> None:
        """Issue ``CancelAction`` for each action call whose future was cancelled.

        A cancelled workflow, ``asyncio.timeout``, ``task.cancel()`` or ``wait_for`` stop
        waiting for a call by cancelling its future; the call itself is then cancelled too.
        Live, this runs once the loop is idle and before the workflow's end is issued; replay
        matches the recorded cancellations at those same places.
        """
        if self.done or self._error is not None:
            return  # the end drops all work; after a divergence nothing more is issued
        cancelled = [cmd for cmd, (fut, _) in self._pending.items() if fut.cancelled()]
        for cmd in cancelled:
            del self._pending[cmd]
            if self._recorded is None:
                self.issue(CancelAction(cmd))
                continue
            if type(self._peek()) is Patched:
                self._take_markers()
            recorded = self._peek()
            if type(recorded) is ActionCancelRequested and recorded.cmd == cmd:  # type: ignore[union-attr]
                self._ri += 1
                self._ncmd += 1
            # else: a history recorded before durable recorded action cancellations; the
            # cancellation has no effect on the workflow, so replay goes on without it.

    def _fail_action(self, event: ActionFailed) -> None:
        entry = self._pending.pop(event.cmd, None)
        if entry is not None and not entry[0].done():
            err = event.error
            entry[0].set_exception(ActionFailedError(
                f"action {entry[1].name!r} failed after {event.attempt} attempt(s): "
                f"{err.type}: {err.message}",
                action=entry[1].name, error_type=err.type, error_message=err.message,
                attempts=event.attempt))

    def start_timer(self, handle: asyncio.TimerHandle, delay: float) -> None:
        """Issue ``StartTimer`` for a loop timer (``call_later``, ``asyncio.sleep``)."""
        cmd = self._ncmd
        recorded = self._peek()
        if type(recorded) is TimerStarted:
            self._ri += 1
            self._ncmd = cmd + 1
            if recorded.duration != delay:  # type: ignore[union-attr]
                self._timer_changed(recorded, delay)  # type: ignore[arg-type]
        else:
            self.issue(StartTimer(cmd, delay, self._loop._time + delay))
        handle._cmd = cmd  # type: ignore[attr-defined]
        self._timers[cmd] = handle

    def _timer_changed(self, recorded: TimerStarted, delay: float) -> None:
        """A timer replayed with another duration than recorded (see ``_changed``): two
        timers started together swapped places if one of the batch has the new duration."""
        end = self._recorded[-1].seq if self._recorded else recorded.seq  # the batch's last

        def same(event: Event) -> bool:
            return type(event) is TimerStarted and event.seq <= end and event.duration == delay

        self._changed("a timer's duration", recorded,
                      StartTimer(recorded.cmd, delay, recorded.time + delay), same,
                      f" ({recorded.duration}s -> {delay}s)")

    def cancel_timer(self, handle: asyncio.TimerHandle) -> None:
        """Issue ``CancelTimer`` for a timer that has not fired yet."""
        cmd: int = getattr(handle, "_cmd", -1)
        if self._timers.get(cmd) is not handle:
            return  # fired already, or never a durable timer
        del self._timers[cmd]
        if self._error is not None:
            return
        recorded = self._peek()
        if type(recorded) is TimerCancelled and recorded.cmd == cmd:  # type: ignore[union-attr]
            self._ri += 1
            self._ncmd += 1
        else:
            self.issue(CancelTimer(cmd))

    def set_state(self, state: str) -> None:
        """Issue ``SetState``."""
        if not isinstance(state, str):
            raise TypeError(f"a workflow state is a str, not {state!r}")
        if self.done:
            return  # the run has ended (see _after_the_end)
        recorded = self._peek()
        if type(recorded) is StateChanged:
            self._ri += 1
            self._ncmd += 1
            if recorded.state != state:  # type: ignore[union-attr]
                self._changed("the state", recorded, SetState(state),  # type: ignore[arg-type]
                              detail=f" ({recorded.state!r} -> {state!r})")  # type: ignore[union-attr]
        else:
            self.issue(SetState(state))
        self.state = state

    def set_data(self, key: str, value: Any, deleted: bool = False) -> None:
        """Issue ``SetData`` for one key of ``ctx.data``."""
        if self.done:
            return  # the run has ended (see _after_the_end)
        payload = None if deleted else dump_value(value, f"ctx.data[{key!r}]")
        if not deleted:  # live and in replay alike, before anything recorded is taken
            check_size(payload, f"ctx.data[{key!r}]")
        recorded = self._peek()
        if type(recorded) is DataChanged and recorded.key == key:  # type: ignore[union-attr]
            self._ri += 1
            self._ncmd += 1
            if recorded.value != payload or recorded.deleted != deleted:  # type: ignore[union-attr]
                self._changed(f"the value of ctx.data[{key!r}]", recorded,  # type: ignore[arg-type]
                              SetData(key, payload, deleted),
                              detail=f" ({recorded.value!r} -> {payload!r})")  # type: ignore[union-attr]
        else:
            self.issue(SetData(key, payload, deleted))
        if deleted:
            self.data.pop(key, None)
        else:
            self.data[key] = value

    # ---- external events ----------------------------------------------------------------

    def _deliver(self, event: EventReceived) -> None:
        for waiter in self._waiters:
            if event.name in waiter.names and not waiter.future.done():
                waiter.future.set_result(event)
                self._waiters.remove(waiter)
                return
        self._inbox.append(event)

    async def wait_for(self, names: tuple[str, ...], timeout: float | None) -> EventReceived | None:
        """The first unconsumed event named one of ``names``, or None after ``timeout``."""
        for event in self._inbox:
            if event.name in names:
                self._inbox.remove(event)
                return event
        fut: asyncio.Future[Any] = self._loop.create_future()
        waiter = _Waiter(names, fut)
        self._waiters.append(waiter)
        timer = None if timeout is None else self._loop.call_later(timeout, _resolve_none, fut)
        try:
            return await fut  # type: ignore[no-any-return]
        finally:
            if timer is not None:
                timer.cancel()
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    # ---- queries and updates ------------------------------------------------------------

    @property
    def handlers(self) -> Handlers:
        """The query and update handlers workflow code registered (made on first use)."""
        if self._handlers is None:
            self._handlers = Handlers(self)
        return self._handlers

    def _accept_update(self, event: UpdateAccepted) -> None:
        if not self.handlers.start(event):  # today's code registers no such handler
            where = self.suspended_at() or "<finished>"
            self._divergence(event, None,
                             f"{where} (no update handler {event.name!r} is registered)")

    def complete_update(self, command: CompleteUpdate, location: str) -> None:
        """Issue ``CompleteUpdate``: an update handler returned or raised."""
        recorded = self._peek()
        if type(recorded) is UpdateCompleted and recorded.id == command.id:  # type: ignore[union-attr]
            self._ri += 1
            self._ncmd += 1
        else:
            self.issue(command, location)

    def read_only(self, what: str, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` as workflow code that must not change the workflow.

        Commands, callbacks and timers raise ``IllegalWorkflowOperationError``; the random
        stream is put back as it was, so a query never changes what a replay computes.
        """
        loop = self._loop
        saved = (self._commands, self._ncmd, self._recorded, loop._ready, self.replaying)
        rng = None if self._random is None else self._random.getstate()
        self._commands = loop._ready = _ReadOnly(what)  # type: ignore[assignment]
        self._recorded, self.replaying = None, False
        try:
            return loop.run_sync(fn, *args)
        finally:
            self._commands, self._ncmd, self._recorded, loop._ready, self.replaying = saved
            if rng is None:
                self._random = None  # seeded afresh on first use, as if never drawn from
            else:
                self._random.setstate(rng)  # type: ignore[union-attr]

    # ---- introspection ------------------------------------------------------------------

    def entered(self) -> contextlib.AbstractContextManager[None]:
        """Run several activations in a row with the instance's loop entered once (replay)."""
        return self._loop.entered()

    def suspended_at(self) -> str | None:
        """``file:line`` of the await the main coroutine is suspended at (None when done)."""
        if self._main is None or self._main.done():
            return None
        coro: Any = self._main.get_coro()
        location = None
        while coro is not None:
            frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
            if frame is None:
                break
            if not frame.f_code.co_filename.startswith((_PACKAGE_DIR, _ASYNCIO_DIR)):
                location = f"{frame.f_code.co_filename}:{frame.f_lineno}"
            coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
        return location

    @property
    def random(self) -> random.Random:
        """The execution's deterministic random stream (seeded by its run id on first use)."""
        if self._random is None:
            self._random = random.Random(self._started.run_id)
        return self._random

    @property
    def parent(self) -> ParentRef | None:
        """The parent workflow's run and command, if this run belongs to a child workflow."""
        return self._started.parent

    def next_run_id(self) -> str:
        """The run id ``continue_as_new`` gives the next run: derived from this one's."""
        return uuid.uuid5(uuid.NAMESPACE_URL, f"durable:{self.info.run_id}:next").hex

    def unconsumed_events(self) -> list[EventReceived]:
        """Events received that no ``wait_for`` took yet, oldest first (carried on to the
        next run by ``continue_as_new``)."""
        return list(self._inbox)

    def uuid4(self) -> uuid.UUID:
        """A random UUID drawn from the execution's deterministic stream."""
        return uuid.UUID(int=self.random.getrandbits(128), version=4)

    def close(self) -> None:
        """Drop the coroutines without running any more of them (eviction).

        Every pending task's coroutine is closed now, on this loop, rather than finalized by
        the garbage collector later, anywhere, with another loop running.
        """
        # Coroutines unwinding now may still issue commands (a timer cancelled by a finally):
        # nobody wants them.
        self._recorded, self._commands = None, []
        if self._main is not None:
            self._main.remove_done_callback(self._on_main_done)
        loop = self._loop
        pending = loop.pending_tasks()
        if pending:
            loop.run_sync(_close_all, pending)
        loop.report_unretrieved()
        loop.close()


def _close_all(tasks: list[asyncio.Task[Any]]) -> None:
    for task in tasks:
        try:
            task.get_coro().close()  # type: ignore[union-attr]
        except BaseException:  # noqa: BLE001 - a finally block in user code raised
            pass


def _resolve_none(fut: asyncio.Future[Any]) -> None:
    if not fut.done():
        fut.set_result(None)
