"""``durable.Replayer``: run recorded histories against today's code, as a worker would."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, NamedTuple, Sequence

import msgspec

from .._definitions import action_definition, workflow_definition
from .._history import Event, WorkflowStarted, decode_history_json
from .._named import events_from_named, is_named_history
from ..errors import HistoryError
from . import replay
from ._instance import WorkflowInstance

__all__ = ["ReplayResult", "Replayer"]

HistorySource = Sequence[Event] | bytes | str | os.PathLike[str]


class ReplayResult(NamedTuple):
    """What replaying one history produced."""

    workflow_id: str
    workflow: str
    events: int
    done: bool  # the history ends with the workflow's end, and the code ended there too
    state: str | None
    data: dict[str, Any]
    suspended_at: str | None  # ``file:line`` of the await the code stopped at, if not done
    # patch id -> whether the run takes its new path (ctx.patched); False: it depends on the
    # old path, whose code must stay until the execution ends
    patches: dict[str, bool] = {}


class Replayer:
    """Replays histories (from ``handle.history()`` or exported JSON) with the worker's engine.

    ``replay`` raises ``NonDeterminismError`` when the code no longer issues the commands the
    history recorded. ``strict=True`` also fails on changed arguments and timer durations.
    """

    def __init__(self, workflows: Iterable[Any], actions: Iterable[Any] = (), *,
                 strict: bool = False) -> None:
        self.workflows = {d.name: d for d in map(workflow_definition, workflows)}
        self.actions = {d.name: d for d in map(action_definition, actions)}
        self.strict = strict

    def replay(self, history: HistorySource) -> ReplayResult:
        """Replay one history; raise ``NonDeterminismError`` on a divergence."""
        events = load_history(history)
        started = events[0] if events else None
        if not isinstance(started, WorkflowStarted):
            raise HistoryError("a history starts with WorkflowStarted")
        defn = self.workflows.get(started.workflow)
        if defn is None:
            raise HistoryError(f"the history is of workflow {started.workflow!r}, which this "
                               f"Replayer does not know (it has {sorted(self.workflows)})")
        instance = WorkflowInstance(defn, started, self.actions, strict=self.strict)
        try:
            _, failed = replay(instance, events)
            if failed is not None:
                raise failed.error  # type: ignore[misc]
            return ReplayResult(started.workflow_id, started.workflow, len(events), instance.done,
                                instance.state, dict(instance.data), instance.suspended_at(),
                                dict(instance.patches))
        finally:
            instance.close()


def load_history(history: HistorySource) -> Sequence[Event]:
    """Events from a list, JSON text or bytes, or the path of a JSON file (a ``Path`` or a
    ``str`` that is not JSON text). The JSON is an exported history (positional events, as
    ``save_history`` writes) or a history with named fields (``durable show ID --json``)."""
    if isinstance(history, str) and not history.lstrip().startswith(("[", "{")):
        history = Path(history)
    if isinstance(history, os.PathLike):
        try:
            history = Path(history).read_bytes()
        except OSError as exc:
            raise HistoryError(f"cannot read the history file {os.fspath(history)!r}: "
                               f"{exc.strerror or exc}") from None
    if isinstance(history, (bytes, str)):
        if is_named_history(history):  # `durable show ID --json`: fields by name
            try:
                return events_from_named(msgspec.json.decode(history))
            except msgspec.DecodeError as exc:
                raise HistoryError(f"not a durable history in JSON: {exc}") from None
        try:
            return decode_history_json(history)
        except ValueError as exc:
            raise HistoryError(f"not a durable history in JSON: {exc}") from exc
    return history
