"""Replay's look-ahead: an action call whose outcome, or an event wait whose event, the next
recorded batch brings alone is resolved where the code awaits it, without the code suspending.

Replaying batch by batch, ``await ctx.run(...)`` suspends the workflow's task, the batch
ends, the next one's ``ActionCompleted`` resolves the call's future and the loop runs the task
again (``ctx.wait_for`` and its ``EventReceived`` alike): a trip through asyncio's task
machinery and the replay's batch loop once per step. When nothing else could run in between,
that trip changes nothing the code can see, so the await takes the next batch itself
(``Ahead.forward``) and returns at once: a sequential workflow's replay runs its code in one
step of its task. Only such a call's or wait's future is an ``AheadFuture`` (a task awaits a
subclass of ``Future`` off asyncio's C fast path); every other one stays an ``asyncio.Future``.

"Nothing else could run in between": at the await, the batch has matched all its recorded
commands, the loop has nothing ready, no condition waits, nothing else waits on the call's
future, and the awaiting task has no cancellation pending; the next batch's only input is this
call's outcome (an event of a name waited for). Then the only thing the normal path runs
before the code goes on is that one input, which ``forward`` applies just as ``replay_batch``
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

from .._history import ActionCompleted, ActionFailed, Event, EventReceived

if TYPE_CHECKING:
    from ._info import HistorySize
    from ._loop import WorkflowLoop
    from ._matcher import Matcher

__all__ = ["Ahead", "AheadFuture"]

T = TypeVar("T")
_OUTCOMES: Final = (ActionCompleted, ActionFailed)
# asyncio.current_task(loop), without its Python frame on 3.11 (a C function from 3.12)
_current_task: Final[Callable[[asyncio.AbstractEventLoop], asyncio.Task[Any] | None]] = \
    asyncio.current_task if sys.version_info >= (3, 12) \
    else getattr(asyncio.tasks, "_current_tasks").get


class AheadFuture(Future[T]):
    """The future of a call or wait whose outcome is the next batch's lone input."""

    __slots__ = ("_ahead", "_at")

    def __await__(self) -> Generator[Any, None, T]:
        if not self.done():
            self._ahead.forward(self, self._at)  # type: ignore[attr-defined]
        return Future.__await__(self)  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]


class Ahead:
    """The batches of one replay, for an ``AheadFuture`` to take the next one (see the module)."""

    __slots__ = ("_history", "events", "_batches", "_matcher", "_loop", "_ready", "_waits",
                 "_take", "_complete", "_size", "begins", "ends", "after")

    def __init__(self, events: Sequence[Event], batches: Iterator[Match[str]],
                 matcher: Matcher, loop: WorkflowLoop, waits: Sized,
                 take: Callable[[Event], None], complete: Callable[[ActionCompleted], None],
                 size: HistorySize) -> None:
        self._history = events
        # The history, and two Nones after it: ``events[after]`` is an event or None.
        self.events: Sequence[Event | None] = [*events, None, None]
        self._batches = batches  # the replay's own iterator: a batch taken here is skipped there
        self._matcher = matcher
        self._loop = loop
        self._ready: Sized = loop._ready
        self._waits = waits  # the instance's condition waits
        self._take = take  # applies one input, as ``replay_batch`` does
        self._complete = complete  # the common input, without the routing
        self._size = size
        self.begins = 0  # where the inputs of the batch being replayed begin
        self.ends = 0  # and where it ends (the next batch's inputs begin)
        # ends + 1: where the next batch has one input, ``events[after]`` is its TaskCompleted
        self.after = 1

    def call(self, cmd: int) -> Future[Any]:
        """The future for action call ``cmd``, issued in the batch being replayed, whose next
        batch has one input (its caller checked that ``events[after]`` is a TaskCompleted)."""
        at = self.ends
        event: Any = self.events[at]  # the next batch's lone input, or not an input at all
        if type(event) not in _OUTCOMES or event.cmd != cmd:
            return Future(loop=self._loop)
        fut: AheadFuture[Any] = AheadFuture(loop=self._loop)
        fut._ahead, fut._at = self, at  # type: ignore[attr-defined]
        return fut

    def wait(self, names: tuple[str, ...]) -> Future[Any]:
        """The future for a wait for events ``names``, begun in the batch being replayed, whose
        next batch has one input (checked by the caller, as for ``call``)."""
        at = self.ends
        event: Any = self.events[at]  # the next batch's lone input, or not an input at all
        if type(event) is not EventReceived or event.name not in names:
            return Future(loop=self._loop)
        fut: AheadFuture[Any] = AheadFuture(loop=self._loop)
        fut._ahead, fut._at = self, at  # type: ignore[attr-defined]
        return fut

    def forward(self, fut: Future[Any], at: int) -> None:
        """``fut`` is awaited: take the batch at ``at`` now if nothing else could run first."""
        matcher = self._matcher
        recorded = matcher.recorded
        if (at != self.ends or recorded is None or matcher.at < len(recorded)
                or matcher.error is not None or matcher.done or self._ready or self._waits
                or fut._callbacks):  # pyright: ignore[reportAttributeAccessIssue]
            return
        task = _current_task(self._loop)
        if task is None or task.cancelling():
            return
        batch = next(self._batches)
        t, ends = batch.start(1), batch.end()
        self.begins, self.ends, self.after = at, ends, ends + 1
        events = self._history
        event: Any = events[at]
        matcher.recorded, matcher.at = events[t + 1:ends], 0
        self._loop._time = events[t].time
        self._size.length = event.seq
        if type(event) is ActionCompleted:
            self._complete(event)
        else:
            self._take(event)
