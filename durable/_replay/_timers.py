"""Durable timers: the workflow loop's ``call_later`` / ``call_at`` (``asyncio.sleep``,
``asyncio.timeout``, ``wait_for``'s timeouts) become ``StartTimer`` commands, and a recorded
``TimerFired`` gives back the handle whose callback runs then."""

from __future__ import annotations

import asyncio
from typing import Any, Final

from .._history import CancelTimer, Event, StartTimer, TimerFired, TimerStarted
from ._matcher import Matcher

__all__ = ["Timers"]

# A timer's duration as ``call_at`` derives it (``when - loop.time()``, at epoch magnitude)
# is off by an ulp or two of the time (~2.4e-7 s): ``asyncio.timeout(0.05)`` records
# 0.04999995..., and ``wait_for`` reaches ``call_at`` on Python 3.12 where 3.11's used
# ``call_later``. Durations closer than this are the same timer's.
_SAME_DURATION: Final = 1e-6


def _same_duration(a: float, b: float) -> bool:
    """Whether two timer durations differ by the rounding of a loop time at most."""
    return a == b or abs(a - b) <= _SAME_DURATION


class Timers:
    """The durable timers of one run that have not fired yet (the loop's ``TimerHost``)."""

    __slots__ = ("_matcher", "_handles")

    def __init__(self, matcher: Matcher) -> None:
        self._matcher = matcher
        self._handles: dict[int, Any] = {}  # cmd -> the loop's timer handle (its ``_cmd``)

    @property
    def replaying(self) -> bool:
        """Whether the workflow re-runs recorded history right now."""
        return self._matcher.replaying

    @property
    def workflow_id(self) -> str:
        """The workflow id (for the loop's log lines)."""
        return self._matcher.info.workflow_id

    def start_timer(self, handle: asyncio.TimerHandle, delay: float) -> None:
        """Issue ``StartTimer`` for a loop timer."""
        matcher = self._matcher
        cmd = matcher.count
        batch, at = matcher.recorded, matcher.at
        recorded: Any = batch[at] if batch is not None and at < len(batch) else None
        if type(recorded) is TimerStarted and matcher.error is None and not matcher.done:
            matcher.at, matcher.count = at + 1, cmd + 1  # Matcher.match's hit in replay, inlined
        else:
            recorded = matcher.match(StartTimer, (cmd, delay, handle.when()))
        if recorded is not None and recorded.duration != delay \
                and abs(recorded.duration - delay) > _SAME_DURATION:  # _same_duration, inlined
            self._changed(recorded, StartTimer(cmd, delay, handle.when()))
        handle._cmd = cmd  # type: ignore[attr-defined]
        self._handles[cmd] = handle

    def _changed(self, recorded: TimerStarted, command: StartTimer) -> None:
        """Another duration than recorded: two timers started together swapped places if one
        of the batch has the new duration (see ``Matcher.changed``)."""
        batch = self._matcher.recorded
        end = batch[-1].seq if batch else recorded.seq  # the batch's last event

        def same(event: Event) -> bool:
            return (type(event) is TimerStarted and event.seq <= end
                    and _same_duration(event.duration, command.duration))

        self._matcher.changed(recorded, command, "a timer's duration",
                              f" ({recorded.duration}s -> {command.duration}s)", same)

    def cancel_timer(self, handle: asyncio.TimerHandle) -> None:
        """Issue ``CancelTimer`` for a timer that has not fired yet."""
        cmd: int = getattr(handle, "_cmd", -1)
        if self._handles.get(cmd) is not handle:
            return  # fired already, or never a durable timer
        del self._handles[cmd]
        self._matcher.match(CancelTimer, (cmd,))

    def fired(self, event: TimerFired) -> asyncio.TimerHandle | None:
        """A recorded ``TimerFired``: the handle whose callback runs now (None: cancelled)."""
        return self._handles.pop(event.cmd, None)  # type: ignore[no-any-return]
