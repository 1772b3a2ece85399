"""Recorded histories as a regression corpus: what ``durable replay`` and the pytest plugin run.

A corpus is a folder of JSON histories (``durable show ID --json``, or ``save_history`` in a
test). Each must replay against today's code; one named ``*.nondeterministic.json`` must
raise ``NonDeterminismError`` instead (a canary that proves the check bites).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Literal, NamedTuple

from . import _definitions
from ._history import Event, encode_history_json
from ._replay._replayer import HistorySource, Replayer, ReplayResult
from .errors import NonDeterminismError

__all__ = ["EXPECT_DIVERGENCE", "Outcome", "expects_divergence", "history_files",
           "replay_one", "replayer_for", "save_history"]

EXPECT_DIVERGENCE = ".nondeterministic.json"


class Outcome(NamedTuple):
    """How one history replayed: ``ok``, ``diverged`` (today's code issues other commands) or
    ``failed`` (it could not be replayed at all); ``error`` says why."""

    status: Literal["ok", "diverged", "failed"]
    result: ReplayResult | None
    error: BaseException | None = None


def save_history(events: Sequence[Event], path: str | os.PathLike[str]) -> None:
    """Write a history (``await handle.history()``) as JSON, the format ``durable show ID
    --json`` prints and ``durable.Replayer``, ``durable replay`` and the pytest plugin read
    (here one event per line, so that a checked-in history diffs well)."""
    lines = [encode_history_json([event])[1:-1] for event in events]
    Path(path).write_bytes(b"[\n" + b",\n".join(lines) + b"\n]\n")


def expects_divergence(path: str | os.PathLike[str]) -> bool:
    """Whether the history file is one that must raise ``NonDeterminismError``."""
    return os.fspath(path).endswith(EXPECT_DIVERGENCE)


def history_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The JSON files named by ``paths``; a folder stands for every ``*.json`` under it.

    Raises ``FileNotFoundError`` for a path that does not exist.
    """
    files: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*.json") if p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"no such file or folder: {os.fspath(name)!r}")
    return files


def replayer_for(modules: Iterable[ModuleType], *, strict: bool = False) -> Replayer:
    """A ``Replayer`` for the workflows and actions the modules define, and for any other
    registered in this process (a module's own definitions win a name clash)."""
    workflows, actions = _definitions.definitions_in(modules)
    return Replayer({**_definitions._workflows, **workflows}.values(),
                    {**_definitions._actions, **actions}.values(), strict=strict)


def replay_one(replayer: Replayer, history: HistorySource, *,
               expect_divergence: bool = False) -> Outcome:
    """Replay one history and classify the result (never raises for a bad history)."""
    try:
        result = replayer.replay(history)
    except NonDeterminismError as exc:
        return Outcome("ok" if expect_divergence else "diverged", None, exc)
    except Exception as exc:  # a malformed history, an unknown workflow, a bug
        return Outcome("failed", None, exc)
    if expect_divergence:
        return Outcome("failed", result, AssertionError(
            "this history is named *.nondeterministic.json, so it must raise "
            "NonDeterminismError, but it replayed cleanly against today's code; rename it "
            "if that is now expected"))
    return Outcome("ok", result)
