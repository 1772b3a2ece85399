"""Replay's look-ahead: an action call whose outcome, or an event wait whose event, the next
recorded batch brings alone is resolved where the code awaits it, without the code suspending.

Replaying batch by batch, ``await ctx.run(...)`` suspends the workflow's task, the batch
ends, the next one's ``ActionCompleted`` resolves the call's future and the loop runs the task
again (``ctx.wait_for`` and its ``EventReceived`` alike): a trip through asyncio's task
machinery and the replay's batch loop once per step. When nothing else could run in between,
that trip changes nothing the code can see, so the await takes the next batch itself
(``AheadFuture.__await__``) and returns at once: a sequential workflow's replay runs its code in one
step of its task. Only such a call's or wait's future is an ``AheadFuture`` (a task awaits a
subclass of ``Future`` off asyncio's C fast path); every other one stays an ``asyncio.Future``.

"Nothing else could run in between": at the await, the batch has matched all its recorded
commands, the loop has nothing ready, no condition waits, nothing else waits on the call's
future, and the awaiting task has no cancellation pending; the next batch's only input is this
call's outcome (an event of a name waited for). Then the only thing the normal path runs
before the code goes on is that one input, which the await applies just as ``replay_batch``
would, at that batch's time; the rest of that batch (the code up to its next suspension, the
loop's ready queue, the batch's unmatched commands) is checked by the ``replay_batch`` call
that is running. (If the event goes to an earlier waiter instead, the future is still pending
and the task suspends at the start of the batch's run, as it would have.)
"""

from __future__ import annotations

import asyncio
import sys
from asyncio import Future
from collections.abc import Callable, Generator, Iterator, Sequence, Sized
from re import Match
from typing import TYPE_CHECKING, Any, Final, TypeVar

from .._history import ActionCompleted, Event
from ..errors import DurableError

if TYPE_CHECKING:
    from .._definitions import ActionDefinition
    from ._info import HistorySize
    from ._loop import WorkflowLoop
    from ._matcher import Matcher

__all__ = ["Ahead", "AheadFuture"]

T = TypeVar("T")
# asyncio.current_task(loop), without its Python frame on 3.11 (a C function from 3.12)
_current_task: Final[Callable[[asyncio.AbstractEventLoop], asyncio.Task[Any] | None]] = \
    asyncio.current_task if sys.version_info >= (3, 12) \
    else getattr(asyncio.tasks, "_current_tasks").get


class AheadFuture(Future[T]):
    """The future of a call or wait whose outcome is the next batch's lone input (made by
    ``ActionCalls.run`` and ``Inbox.wait_for`` where ``Ahead`` says so)."""

    __slots__ = ("_ahead", "_at")

    def __await__(self) -> Generator[Any, None, T]:
        # Awaited: take the batch at ``_at`` now if nothing else could run first (the module).
        ahead: Ahead = self._ahead  # type: ignore[attr-defined]
        at: int = self._at  # type: ignore[attr-defined]
        matcher = ahead.matcher
        recorded = matcher.recorded
        if (self.done() or at != ahead.ends or recorded is None or matcher.at < len(recorded)
                or matcher.error is not None or matcher.done or ahead.ready or ahead.waits
                or self._callbacks):  # pyright: ignore[reportAttributeAccessIssue]
            return Future.__await__(self)  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        task = _current_task(ahead.loop)
        if task is None or task.cancelling():
            return Future.__await__(self)  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        batch = next(ahead.batches)
        t, ends = batch.start(1), batch.end()
        ahead.begins, ahead.ends, ahead.after = at, ends, ends + 1
        events: Sequence[Any] = ahead.events
        event: Any = events[at]
        matcher.recorded, matcher.at = events[t + 1:ends], 0
        ahead.loop._time = events[t].time
        ahead.size.length = event.seq
        if type(event) is ActionCompleted:  # ActionCalls.complete in line (a call costs)
            result, value = ahead.pending.pop(event.cmd)[1].result, event.result
            if result.convert is None or type(value) is result.exact:
                self.set_result(value)
            else:
                try:
                    self.set_result(result.load(value))
                except DurableError as exc:
                    self.set_exception(exc)
        else:
            ahead.take(event)
        return Future.__await__(self)  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]


class Ahead:
    """The batches of one replay, for an ``AheadFuture`` to take the next one (see the module).

    Where ``events[after]`` is a ``TaskCompleted``, the next batch has one input,
    ``events[ends]``: a call whose outcome it is, or a wait for its event, gets an
    ``AheadFuture`` (``ActionCalls.run``, ``Inbox.wait_for``; in line, as a call costs)."""

    __slots__ = ("events", "batches", "matcher", "loop", "ready", "waits", "take",
                 "pending", "size", "begins", "ends", "after")

    def __init__(self, events: Sequence[Event], batches: Iterator[Match[str]],
                 matcher: Matcher, loop: WorkflowLoop, waits: Sized,
                 take: Callable[[Event], None],
                 pending: dict[int, tuple[Future[Any], ActionDefinition]],
                 size: HistorySize) -> None:
        # The history, and two Nones after it: ``events[after]`` is an event or None.
        self.events: Sequence[Event | None] = [*events, None, None]
        self.batches = batches  # the replay's own iterator: a batch taken here is skipped there
        self.matcher = matcher
        self.loop = loop
        self.ready: Sized = loop._ready
        self.waits = waits  # the instance's condition waits
        self.take = take  # applies one input, as ``replay_batch`` does
        self.pending = pending  # the action calls' futures and definitions, by command
        self.size = size
        self.begins = 0  # where the inputs of the batch being replayed begin
        self.ends = 0  # and where it ends (the next batch's inputs begin)
        self.after = 1  # ends + 1
