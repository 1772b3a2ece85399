"""``durable.History``: a run's events as ``handle.history()`` returns them."""

from __future__ import annotations

from typing import TypeVar

from ._history import Event, WorkflowStarted, _Event
from .errors import HistoryError

__all__ = ["History"]

E = TypeVar("E", bound=_Event)


class History(list[Event]):
    """A run's events in ``seq`` order, as ``handle.history()`` returns them: a list, with
    typed views so that fields are read without casts."""

    __slots__ = ()

    @property
    def started(self) -> WorkflowStarted:
        """The run's first event: its workflow, arguments and the run it continues."""
        first = self[0] if self else None
        if not isinstance(first, WorkflowStarted):
            raise HistoryError(f"a history starts with WorkflowStarted, not {first!r}")
        return first

    def of_type(self, kind: type[E]) -> list[E]:
        """The events of one kind, in order."""
        return [event for event in self if isinstance(event, kind)]
