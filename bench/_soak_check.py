"""The soak's final audit: every execution it started, every run's history, every effect.

Histories are checked with the production fault suite's checker
(``tests/faults/_checks.check_history``: dense seq, one start and one terminal event, batches
closed by ``TaskCompleted``, each action completed and each timer fired at most once and all
of them settled, event keys recorded once); results against what the code must return;
effects against what each workflow applies (one row per call, none twice).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

import durable
from durable._history import Event, WorkflowStarted
from durable.errors import DurableError

from ._soak_flows import EFFECTS_PER_RUN, soak_mix_result
from ._soak_rig import ROOT

Started = tuple[str, int]  # (workflow name, i)


def _checker() -> Callable[[Sequence[Event]], None]:
    path = ROOT / "tests" / "faults" / "_checks.py"
    spec = importlib.util.spec_from_file_location("soak_fault_checks", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    check: Callable[[Sequence[Event]], None] = module.check_history
    return check


@dataclass
class Audit:
    """What the audit found; ``ok`` when nothing is wrong."""

    executions: int = 0
    histories: int = 0
    lost: list[str] = field(default_factory=list)       # not completed, or a wrong result
    broken: list[str] = field(default_factory=list)     # a history that breaks an invariant
    effects_missing: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.broken or self.effects_missing or self.duplicated)


def expected(name: str, i: int) -> Any:
    return soak_mix_result(i) if name == "SoakMix" else i


async def audit(client: durable.Client, pg_url: str, started: dict[str, Started]) -> Audit:
    """Check every started execution, its runs, its child and its effects."""
    check, found = _checker(), Audit()
    effects = await _effects(pg_url)
    for workflow_id, (name, i) in started.items():
        found.executions += 1
        handle = client.get_handle(workflow_id)
        try:
            description = await handle.describe()
            result = await handle.result(timeout=1) if description.status == "completed" else None
        except DurableError as exc:
            found.lost.append(f"{workflow_id}: {type(exc).__name__}: {exc}")
            continue
        if description.status != "completed" or result != expected(name, i):
            found.lost.append(f"{workflow_id}: {description.status}, result {result!r}")
        ids = [workflow_id, f"{workflow_id}-child"] if name == "SoakMix" else [workflow_id]
        for one in ids:
            await _check_runs(client.get_handle(one), check, found)
        _check_effects(workflow_id, name, effects, found)
    return found


async def _check_runs(handle: durable.WorkflowHandle[Any],
                      check: Callable[[Sequence[Event]], None], found: Audit) -> None:
    """Every run of the execution, newest first (each names the run it continued)."""
    run_id: str | None = None
    while True:
        events = await handle.history(run_id=run_id)
        found.histories += 1
        try:
            check(events)
        except AssertionError as exc:
            found.broken.append(f"{handle.workflow_id} run {run_id or 'current'}: {exc}")
        first = events[0] if events else None
        if not isinstance(first, WorkflowStarted) or first.continued_from is None:
            return
        run_id = first.continued_from


async def _effects(pg_url: str) -> dict[str, list[str]]:
    """Labels of the applied effects, by workflow id."""
    pg = await asyncpg.connect(pg_url)
    try:
        rows = await pg.fetch("SELECT workflow_id, label FROM soak_effects")
    finally:
        await pg.close()
    by_id: dict[str, list[str]] = {}
    for row in rows:
        by_id.setdefault(row["workflow_id"], []).append(row["label"])
    return by_id


def _check_effects(workflow_id: str, name: str, effects: dict[str, list[str]],
                   found: Audit) -> None:
    labels = effects.get(workflow_id, []) + effects.get(f"{workflow_id}-child", [])
    if len(labels) != len(set(labels)):
        found.duplicated.append(f"{workflow_id}: {sorted(labels)}")
    if len(set(labels)) != EFFECTS_PER_RUN[name]:
        found.effects_missing.append(f"{workflow_id}: {sorted(labels)}")
