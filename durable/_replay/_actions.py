"""Action calls inside the engine: ``ctx.run`` issues ``ScheduleAction``; a recorded
``ActionCompleted`` or ``ActionFailed`` resolves the call's future; a call whose future the
workflow cancelled is cancelled in turn (``CancelAction``)."""

from __future__ import annotations

import asyncio
from asyncio import Future
from typing import Any, Final

from .._definitions import ActionDefinition, Retry, action_definition, retry_spec
from .._history import (
    ActionCompleted, ActionFailed, ActionScheduled, CancelAction, Event, ScheduleAction,
    TaskCompleted,
)
from .._options import CallOptions
from .._payloads import same_payload
from .._queues import check_queue
from .._validate import check_positive_duration, check_priority, show
from ..errors import ActionFailedError, ArgumentTypeError, DurableError
from ._ahead import Ahead, AheadFuture
from ._matcher import UNMATCHED, Matcher

__all__ = ["CALL_OPTIONS", "ActionCalls"]

_OUTCOMES: Final = (ActionCompleted, ActionFailed)
# The keywords of ``ctx.run`` that are the call's options, not the action's arguments.
CALL_OPTIONS: Final = frozenset({"priority", "queue", "retry", "timeout", "total_timeout"})


def _call_options(queue: str, kwargs: dict[str, Any]) -> tuple[str, CallOptions | None]:
    """Take the options out of a call's keywords (checked: typed errors for bad ones)."""
    if "queue" in kwargs:
        queue = check_queue(kwargs.pop("queue"), "ctx.run(queue=)")
    retry = kwargs.pop("retry", None)
    if retry is not None and not isinstance(retry, Retry):
        raise ArgumentTypeError(f"ctx.run(retry=) takes a durable.Retry, not {show(retry)}",
                                parameter="retry")
    timeout, total = (check_positive_duration(kwargs.pop(k, None), f"ctx.run({k}=)")
                      for k in ("timeout", "total_timeout"))
    priority = kwargs.pop("priority", None)
    if priority is not None:
        priority = check_priority(priority, "ctx.run(priority=)")
    if retry is None and timeout is None and total is None and priority is None:
        return queue, None
    return queue, CallOptions(None if retry is None else retry_spec(retry), timeout, total,
                              priority=priority)


class ActionCalls:
    """The action calls of one run that have no outcome yet, by command number."""

    __slots__ = ("_matcher", "_loop", "definitions", "pending", "ahead")

    def __init__(self, matcher: Matcher, loop: asyncio.AbstractEventLoop,
                 definitions: dict[str, ActionDefinition]) -> None:
        self._matcher = matcher
        self._loop = loop
        self.definitions = definitions  # the actions this worker knows by name
        self.pending: dict[int, tuple[asyncio.Future[Any], ActionDefinition]] = {}
        self.ahead: Ahead | None = None  # while ``replay`` runs: its batches (``_ahead``)

    def run(self, action: Any, /, *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
        """``ctx.run(action, *args, **kwargs)``: issue ``ScheduleAction`` for the action (a
        decorated function, its definition or its registered name); return the future its
        outcome resolves. ``Context.run`` is this very method: one frame less per step.

        The keywords in ``CALL_OPTIONS`` are this call's options, not the action's arguments:
        ``queue`` (default: the action's own), ``retry``, ``timeout`` and ``total_timeout``
        (default: the action's declaration; recorded with the call), ``priority`` (default:
        the workflow's; recorded with the call when given)."""
        defn = getattr(action, "__durable_action__", None)  # the common case, without a call
        if defn is None:
            defn = action_definition(action, self.definitions)
        on, options = defn.queue, None
        if kwargs and not CALL_OPTIONS.isdisjoint(kwargs):
            on, options = _call_options(defn.queue, kwargs)
        matcher = self._matcher
        cmd = matcher.count
        if not matcher.replaying:
            a, k = defn.params.dump(args, kwargs)
            matcher.match(ScheduleAction, (cmd, defn.name, a, k, on, options))
        else:
            a = list(args)  # compared as they are first: plain values need no dumping
            batch: Any = matcher.recorded
            at = matcher.at
            recorded: Any = batch[at] if at < len(batch) else None
            if (type(recorded) is ActionScheduled and recorded.name == defn.name
                    and matcher.error is None and not matcher.done):
                matcher.at, matcher.count = at + 1, cmd + 1  # Matcher.match's hit, inlined
            else:
                fields = (cmd, defn.name, a, kwargs, on, options)
                recorded = matcher.match(ScheduleAction, fields, refusable=True)
                if recorded is UNMATCHED:
                    defn.params.dump(args, kwargs)  # refused live: it raises again, as then
                    matcher.unmatched(ScheduleAction, fields)
            if recorded is not None:
                r = recorded.args  # compared inline first: the common case costs no call
                if (r != a and not same_payload(r, a)) or (
                        kwargs and not same_payload(recorded.kwargs, kwargs)):
                    self._changed(defn, recorded, args, kwargs)
            ahead = self.ahead  # the next batch this call's outcome alone: a look-ahead
            if ahead is not None and type(ahead.events[ahead.after]) is TaskCompleted:
                outcome: Any = ahead.events[ahead.ends]
                if type(outcome) in _OUTCOMES and outcome.cmd == cmd:
                    call: AheadFuture[Any] = AheadFuture(loop=self._loop)
                    call._ahead, call._at = ahead, ahead.ends  # type: ignore[attr-defined]
                    self.pending[cmd] = (call, defn)
                    return call
        fut: Future[Any] = Future(loop=self._loop)  # loop.create_future, inlined
        self.pending[cmd] = (fut, defn)
        return fut

    def _changed(self, defn: ActionDefinition, recorded: ActionScheduled,
                 args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Replayed with other arguments than recorded (see ``Matcher.changed``). They are
        checked as live first: a call the checks refuse issued no command when it ran live, so
        it takes none of the recorded ones now. The recorded ones are read with today's
        signature, so a change of the types alone (a field with a default added to a
        dataclass) is not a change."""
        try:
            a, k = defn.params.dump(args, kwargs)
        except DurableError:
            self._matcher.put_back()
            raise
        if same_payload(recorded.args, a) and same_payload(recorded.kwargs, k):
            return
        try:
            if defn.params.load(recorded.args, recorded.kwargs) == defn.params.load(a, k):
                return
        except DurableError:
            pass  # they no longer fit the signature: a change
        name = defn.name

        def same(event: Event) -> bool:
            return (type(event) is ActionScheduled and event.name == name
                    and event.args == a and event.kwargs == k)

        self._matcher.changed(recorded, ScheduleAction(recorded.cmd, name, a, k, recorded.queue,
                                                        recorded.options),
                              f"the arguments of action {name!r}", f" ({recorded.args} -> {a})",
                              same)

    def complete(self, event: ActionCompleted) -> None:
        """A recorded ``ActionCompleted``: the call's result, converted to its return type."""
        entry = self.pending.pop(event.cmd, None)
        if entry is not None and not entry[0].done():
            fut, defn = entry
            result, value = defn.result, event.result
            # Result.load, inlined: no call for a value of exactly the annotated scalar type
            if result.convert is not None and type(value) is not result.exact:
                try:
                    value = result.load(value)
                except DurableError as exc:
                    fut.set_exception(exc)
                    return
            fut.set_result(value)

    def fail(self, event: ActionFailed) -> None:
        """A recorded ``ActionFailed``: the call raises ``ActionFailedError``."""
        entry = self.pending.pop(event.cmd, None)
        if entry is not None and not entry[0].done():
            err = event.error
            entry[0].set_exception(ActionFailedError(
                f"action {entry[1].name!r} failed after {event.attempt} attempt(s): "
                f"{err.type}: {err.message}",
                action=entry[1].name, error_type=err.type, error_message=err.message,
                attempts=event.attempt))

    def any_cancelled(self) -> bool:
        """Whether a pending call's future was cancelled."""
        return any(fut.cancelled() for fut, _ in self.pending.values())

    def cancel_abandoned(self) -> None:
        """Issue ``CancelAction`` for each call whose future was cancelled.

        A cancelled workflow, ``asyncio.timeout``, ``task.cancel()`` or ``wait_for`` stop
        waiting for a call by cancelling its future; the call itself is then cancelled too.
        Live, this runs once the loop is idle and before the workflow's end is issued; replay
        matches the recorded cancellations at those same places (a history recorded before
        durable recorded them has none: replay goes on without, they change nothing).
        """
        matcher = self._matcher
        if matcher.done or matcher.error is not None:
            return  # the end drops all work; after a divergence nothing more is issued
        cancelled = [cmd for cmd, (fut, _) in self.pending.items() if fut.cancelled()]
        for cmd in cancelled:
            del self.pending[cmd]
            matcher.match(CancelAction, (cmd,))
