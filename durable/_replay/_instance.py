"""One live workflow coroutine and the deterministic machinery around it.

``WorkflowInstance.activate(inputs, time, recorded)`` feeds one batch of inputs to the
coroutine, runs it until every task waits again, and returns the commands it issued. It does
no I/O and never raises: the worker (live) and the ``Replayer`` run this same code.

The instance drives; its parts record. Each input goes to the part it concerns (``_ROUTES``):
action outcomes to the action calls (``_actions``), fired timers to the timers (``_timers``),
events to the inbox (``_events``), child outcomes to the children (``_children``). Every
command goes through the run's ``Matcher`` (``_matcher``), which in replay mode (``recorded``
given: the batch was run once and recorded the command events it produced) pairs it with the
next recorded one and reports the first divergence with the source line that caused it.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any, Callable, Final, Sequence

from .._definitions import ActionDefinition, WorkflowDefinition
from .._history import (
    ActionCompleted, ActionFailed, CancelRequested, CancelWorkflow, ChildCancelled,
    ChildCompleted, ChildFailed, ChildStarted, ChildStartFailed, Command, CompleteWorkflow,
    ContinueAsNew, Event, EventReceived, FailWorkflow, ParentRef, TimerFired, UpdateAccepted,
    WorkflowStarted, WorkflowTerminated,
)
from .._guard_live import DeterminismMode, watch
from .._payloads import error_info
from ..errors import DurableError
from ._actions import ActionCalls
from ._children import Children
from ._conditions import Conditions
from ._context import Context
from ._events import Inbox
from ._handlers import Handlers
from ._info import (
    INTERNAL, Abort, Activation, ContinueAsNewRequest, HistorySize, NonDeterminismWarning,
    ParentInfo,
    WorkflowInfo,
)
from ._loop import WorkflowLoop
from ._matcher import CANCELLATIONS, Matcher
from ._state import RunState
from ._timers import Timers

__all__ = ["Activation", "ContinueAsNewRequest", "NonDeterminismWarning", "WorkflowInfo",
           "WorkflowInstance"]


class WorkflowInstance:
    """A workflow coroutine on its own deterministic loop, driven batch by batch."""

    def __init__(self, defn: WorkflowDefinition, started: WorkflowStarted,
                 actions: dict[str, ActionDefinition] | None = None, *,
                 strict: bool = False, determinism: DeterminismMode = "off") -> None:
        self.defn = defn
        # live activations' run-time guard (``_guard_live``)
        self.determinism: DeterminismMode = determinism
        # tuple.__new__ skips the generated, keyword-parsing __new__ (one per instance)
        self.info = info = tuple.__new__(WorkflowInfo, (  # pyright: ignore[reportUnknownMemberType]
            started.workflow_id, started.run_id, started.tenant, started.workflow,
            started.version, 1, started.continued_from, started.queue, started.priority,
            started.fairness_key,
            None if started.parent is None else ParentInfo(started.parent.workflow_id,
                                                           started.parent.run_id),
            HistorySize()))
        self.history_size: HistorySize = info.history_size  # type: ignore[assignment]
        self.actions = actions or {}
        self._started = started
        self.matcher = matcher = Matcher(info, strict)
        self.timers = timers = Timers(matcher)
        self._loop = loop = WorkflowLoop(timers, started.run_id)  # type: ignore[abstract]
        self.calls = calls = ActionCalls(matcher, loop, self.actions)
        self.inbox = inbox = Inbox(loop)
        self.run_state = state = RunState(matcher, started.run_id)
        self.children = children = Children(matcher, loop, info)
        self.conditions = conditions = Conditions(loop)
        self._condition_waits = conditions._waits  # read on every activation: no call
        self._handlers: Handlers | None = None
        self._main: asyncio.Task[Any] | None = None
        self._parts = (self, calls, inbox, children)  # what _ROUTES send inputs to
        self.ctx = Context(info, defn, loop, matcher, calls, inbox, state, children,
                           self._get_handlers, conditions)

    # ---- driving ------------------------------------------------------------------------

    def activate(self, inputs: Sequence[Event], time: float,
                 recorded: Sequence[Event] | None = None) -> Activation:
        """Feed one batch of inputs at workflow time ``time``; return the commands issued."""
        matcher = self.matcher
        commands = matcher.begin(recorded)
        loop = self._loop
        loop._time = time
        if inputs:
            self.history_size.length = inputs[-1].seq
        if matcher.error is None:
            parts = self._parts
            for event in inputs:
                part, apply = _ROUTES[type(event)]
                apply(parts[part], event)
            if matcher.error is None:  # applying an input can find a divergence
                guard = None if recorded is not None or self.determinism == "off" else \
                    watch(self.determinism)  # live code only: replay is not watched
                if guard is not None:
                    guard.__enter__()
                try:
                    loop.run_ready()
                    waits = self._condition_waits
                    while waits and matcher.error is None and self.conditions.check():
                        loop.run_ready()
                finally:
                    if guard is not None:
                        guard.__exit__()
            if recorded is None:
                if self.children.by_cmd or self.calls.any_cancelled():
                    self._cancel_abandoned()
            elif matcher.at < len(recorded) and matcher.error is None:
                self._rest_of_batch()
        # tuple.__new__ skips the generated, keyword-parsing __new__ (one per batch)
        return tuple.__new__(Activation, (commands, matcher.error))  # pyright: ignore[reportUnknownMemberType]

    def replay_batch(self, inputs: Sequence[Event], time: float,
                     recorded: Sequence[Event]) -> Activation | None:
        """``activate`` for ``replay``, which runs in a block of :meth:`entered` (its loop the
        running one) and issues no new commands: the activation if it failed, else None.

        The same steps as ``activate``'s, with what a replay pays on every batch inlined
        (``Matcher.begin``, ``WorkflowLoop.run_ready``)."""
        matcher = self.matcher
        matcher.recorded, matcher.at = recorded, 0
        loop = self._loop
        loop._time = time
        if inputs:
            self.history_size.length = inputs[-1].seq
        if matcher.error is None:
            parts = self._parts
            for event in inputs:
                part, apply = _ROUTES[type(event)]
                apply(parts[part], event)
            if matcher.error is None:  # applying an input can find a divergence
                ready = loop._ready
                while ready:  # WorkflowLoop.run_ready, inlined (the loop is entered)
                    handle = ready.popleft()
                    if not handle._cancelled:
                        try:
                            handle._context.run(handle._callback, *handle._args)  # type: ignore[attr-defined]
                        except (SystemExit, KeyboardInterrupt):
                            raise
                        except BaseException as exc:  # noqa: BLE001 - as asyncio's loops do
                            loop.call_exception_handler({
                                "message": f"Exception in callback {handle}", "exception": exc,
                                "handle": handle})
                waits = self._condition_waits
                while waits and matcher.error is None and self.conditions.check():
                    loop.run_ready()
            # matcher.recorded, not recorded: an awaited call may have taken later batches
            if matcher.at < len(matcher.recorded) and matcher.error is None:
                self._rest_of_batch()
        if matcher.error is None:
            return None
        return tuple.__new__(Activation, ([], matcher.error))  # pyright: ignore[reportUnknownMemberType]

    def take_input(self, event: Event) -> None:
        """Apply one recorded input (for replay's look-ahead, ``_ahead``)."""
        part, apply = _ROUTES[type(event)]
        apply(self._parts[part], event)

    def _rest_of_batch(self) -> None:
        """Replay: the batch recorded commands that the code has not issued.

        Cancellations of action calls and children come last in a batch (live, they are found
        once the loop is idle), so replay matches them here rather than after every batch.
        Anything else left over is a divergence.
        """
        matcher = self.matcher
        try:
            matcher.take_markers()
            if type(matcher.next_event()) in CANCELLATIONS:
                self._cancel_abandoned()
            leftover = matcher.next_event()
            if leftover is not None:
                matcher.diverge(leftover, None, self.suspended_at() or "<finished>")
        except Abort:
            pass  # it is in matcher.error

    def _start(self, event: WorkflowStarted) -> None:
        started = self._started
        try:
            args, kwargs = self.defn.params.load(started.args, started.kwargs)
            coro = self.defn.fn(self.ctx, *args, **kwargs)
        except Exception as exc:
            async def fail(exc: Exception = exc) -> Any:
                raise exc
            coro = fail()
        self._main = self._loop.create_task(coro, name=f"workflow {self.info.workflow_id}")
        self._main.add_done_callback(self._on_main_done)

    def _cancel_requested(self, event: CancelRequested) -> None:
        if self._main is not None and not self._main.done():
            self._main.cancel(event.reason or None)

    def _timer_fired(self, event: TimerFired) -> None:
        handle = self.timers.fired(event)
        if handle is not None:
            handle._scheduled = False  # type: ignore[attr-defined]  # cancelling it is a no-op now
            self._loop._ready.append(handle)

    def _accept_update(self, event: UpdateAccepted) -> None:
        if not self.handlers.start(event):  # today's code registers no such handler
            where = self.suspended_at() or "<finished>"
            self.matcher.record_divergence(
                event, None, f"{where} (no update handler {event.name!r} is registered)")

    def _on_main_done(self, task: asyncio.Task[Any]) -> None:
        matcher = self.matcher
        if matcher.error is not None:
            return
        code = self.defn.fn.__code__
        where = f"{code.co_filename}:{code.co_firstlineno} (return)"
        self._cancel_abandoned()
        if task.cancelled():
            matcher.match(CancelWorkflow, (), where)
            return
        exc = task.exception()
        if isinstance(exc, Abort):
            return
        if isinstance(exc, ContinueAsNewRequest):
            matcher.match(ContinueAsNew, (self.next_run_id(), *exc.payload), where)
            return
        if exc is None:
            try:
                matcher.match(CompleteWorkflow, (self.defn.result.dump(task.result()),), where)
                return
            except DurableError as err:
                exc = err
        tb = exc.__traceback__
        while tb is not None:
            if not tb.tb_frame.f_code.co_filename.startswith(INTERNAL):
                where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno} (raise)"
            tb = tb.tb_next
        matcher.match(FailWorkflow, (error_info(exc),), where)

    def _cancel_abandoned(self) -> None:
        """Cancel the action calls, then the children, whose futures were cancelled."""
        self.calls.cancel_abandoned()
        self.children.cancel_abandoned()

    # ---- what the run is -----------------------------------------------------------------

    @property
    def replaying(self) -> bool:
        """Whether the code is re-running recorded history right now."""
        return self.matcher.replaying

    @property
    def done(self) -> bool:
        """Whether the run has ended (its terminal command was issued)."""
        return self.matcher.done

    @property
    def outcome(self) -> Command | None:
        """The terminal command, once issued."""
        return self.matcher.outcome

    @property
    def state(self) -> str | None:
        """The workflow's named state (``ctx.set_state``)."""
        return self.run_state.state

    @property
    def data(self) -> dict[str, Any]:
        """The workflow's data (``ctx.data``)."""
        return self.run_state.data

    @property
    def patches(self) -> dict[str, bool]:
        """Patch id -> whether this run takes its new path (``ctx.patched``)."""
        return self.matcher.patches

    @property
    def handlers(self) -> Handlers:
        """The query and update handlers workflow code registered (made on first use)."""
        return self._get_handlers()

    def _get_handlers(self) -> Handlers:
        if self._handlers is None:
            self._handlers = Handlers(self.matcher, self._loop, self.run_state, self.info)
            if self.defn.handlers:
                self._handlers.declare(self.defn.handlers, self.ctx)
        return self._handlers

    @property
    def random(self) -> Any:
        """The execution's deterministic random stream (seeded by its run id on first use)."""
        return self.run_state.random

    def uuid4(self) -> uuid.UUID:
        """A random UUID drawn from the execution's deterministic stream."""
        return self.run_state.uuid4()

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
        return self.inbox.unconsumed()

    def read_only(self, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` as workflow code that must not change the workflow (queries)."""
        return self.handlers.read_only(what, fn, *args)

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
            if not frame.f_code.co_filename.startswith(INTERNAL):
                location = f"{frame.f_code.co_filename}:{frame.f_lineno}"
            coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
        return location

    def close(self) -> None:
        """Drop the coroutines without running any more of them (eviction).

        Every pending task's coroutine is closed now, on this loop, rather than finalized by
        the garbage collector later, anywhere, with another loop running. What they still do
        as they unwind (a timer cancelled by a ``finally``) is recorded nowhere.
        """
        self.matcher.begin(None)
        if self._main is not None:
            self._main.remove_done_callback(self._on_main_done)
        loop = self._loop
        pending = loop.pending_tasks()
        if pending:
            loop.run_sync(_close_all, pending)
        loop.report_unretrieved()
        loop.close()
        # The instance's own cycles (through its parts and its context's handlers), undone so
        # that it is freed now rather than by the collector's next full pass.
        del self._parts
        self.ctx._handlers = _closed  # pyright: ignore[reportPrivateUsage]


def _closed() -> Handlers:
    raise RuntimeError("the workflow instance is closed")


def _close_all(tasks: list[asyncio.Task[Any]]) -> None:
    for task in tasks:
        try:
            task.get_coro().close()
        except BaseException:  # noqa: BLE001 - a finally block in user code raised
            pass
    # A task and the future it waits for refer to each other (the future's callback wakes
    # the task), as do a gather and its children: cancelling hands those callbacks to the
    # loop, which drops them as it closes, so the instance is freed at once, not by the
    # collector's next full pass. No workflow code runs: the coroutines are closed.
    for task in tasks:
        task.cancel()
        waiter: asyncio.Future[Any] | None = getattr(task, "_fut_waiter", None)
        if waiter is not None and not waiter.done():  # a gather whose children were done
            asyncio.Future.cancel(waiter)  # pyright: ignore[reportUnknownMemberType]


# Input type -> (the part of the instance it goes to, as an index into ``_parts``, and how).
_SELF, _CALLS, _INBOX, _CHILDREN = range(4)
_ROUTES: Final[dict[type[Event], tuple[int, Callable[[Any, Any], None]]]] = {
    ActionCompleted: (_CALLS, ActionCalls.complete),
    TimerFired: (_SELF, WorkflowInstance._timer_fired),
    EventReceived: (_INBOX, Inbox.deliver),
    ActionFailed: (_CALLS, ActionCalls.fail),
    WorkflowStarted: (_SELF, WorkflowInstance._start),
    CancelRequested: (_SELF, WorkflowInstance._cancel_requested),
    ChildStarted: (_CHILDREN, Children.apply),
    ChildStartFailed: (_CHILDREN, Children.apply),
    ChildCompleted: (_CHILDREN, Children.apply),
    ChildFailed: (_CHILDREN, Children.apply),
    ChildCancelled: (_CHILDREN, Children.apply),
    UpdateAccepted: (_SELF, WorkflowInstance._accept_update),
    WorkflowTerminated: (_SELF, lambda instance, event: None),  # its code is not run again
}
