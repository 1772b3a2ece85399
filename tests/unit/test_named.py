"""Histories with named fields (``durable show ID --json``) read back as the events they show."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from durable._history import ActionFailed, ErrorInfo, ParentRef, WorkflowStarted
from durable._named import events_from_named, is_named_history, named
from durable._replay._replayer import load_history
from durable.errors import HistoryError

CORPUS = sorted((Path(__file__).resolve().parents[1] / "replay" / "histories").glob("*.json"))


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_every_recorded_history_round_trips_through_named_fields(path: Path) -> None:
    events = load_history(path)
    text = msgspec.json.encode(named(list(events)))
    assert is_named_history(text) and not is_named_history(path.read_bytes())
    assert load_history(text) == events
    assert load_history(msgspec.json.encode({"workflow_id": "x", "history": named(events)})) \
        == events


def test_nested_parts_and_defaults() -> None:
    started = WorkflowStarted(1, 2.0, "W", "1", "w", "r", "t", [1], parent=ParentRef("p", "pr", 3))
    failed = ActionFailed(5, 6.0, 0, ErrorInfo("ValueError", "bad", "tb"), attempt=2)
    shown = named([started, failed])
    assert shown[0]["parent"] == {"workflow_id": "p", "run_id": "pr", "cmd": 3}
    assert shown[1]["error"] == {"type": "ValueError", "message": "bad", "traceback": "tb"}
    assert shown[1]["type"] == "ActionFailed" and shown[1]["attempt"] == 2
    assert events_from_named(shown) == [started, failed]
    del shown[1]["attempt"], shown[1]["error"]["traceback"]  # defaulted fields may be left out
    del shown[0]["kwargs"], shown[0]["queue"]
    assert events_from_named(shown) == [
        started, ActionFailed(5, 6.0, 0, ErrorInfo("ValueError", "bad"))]


@pytest.mark.parametrize("data, says", [
    ({"history": 3}, '"history" is not a list'),
    ([{"type": "Nope", "seq": 1}], "item 1 is not an event"),
    ([{"type": "ChildCompleted", "seq": 1, "time": 0.0}], "a ChildCompleted has no 'cmd'"),
    ([{"type": "TimerFired", "seq": "one", "time": 0.0, "cmd": 1}], "Expected `int`"),
])
def test_what_is_not_a_history_is_a_history_error(data: object, says: str) -> None:
    with pytest.raises(HistoryError, match="not a durable history in JSON") as raised:
        load_history(json.dumps(data))
    assert says in str(raised.value)
