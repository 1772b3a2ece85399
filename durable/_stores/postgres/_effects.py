"""A workflow-task commit that reaches beyond its own execution (``durable_commit_effects``).

Cancelled action tasks, starts (child executions, continue-as-new) and signals (inputs for
other executions) travel as column arrays to one PL/pgSQL function created by migration
``0002_commit_effects.sql``, which calls ``durable_commit`` and then applies them in the same
transaction. Commits without such effects keep using the plain ``COMMIT`` statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable, Final

from msgspec.structs import replace

from ..._queues import route
from ..._history import Event, encode_event
from .._records import Signal, Start
from ._statements import COMMIT, COMMIT_FLOW, leasing, with_flow

__all__ = ["COMMIT_EFFECTS", "COMMIT_EFFECTS_FLOW", "effect_columns", "leased_variant"]

Split = Callable[[Event, float], tuple[bytes, bytes]]

# $1-$22 as durable_commit takes them, $23 cancelled actions, $24-$33 the starts, $34-$39 the
# signals; then, as in COMMIT, NOTIFY channel $40 with payload $41 when it succeeded and $41 is
# not NULL (a terminal status); and, as in COMMIT, the new timers ($15) moved from the
# committer's clock ($22) onto the store's ($42, or the server's when NULL).
COMMIT_EFFECTS: Final = (
    "SELECT c.done, CASE WHEN c.done AND $41::text IS NOT NULL THEN pg_notify($40, $41) END "
    "FROM (SELECT durable_commit_effects("
    + ", ".join("durable_due_on_store_clock($15, $22, $42::float8)" if n == 15 else f"${n}"
                for n in range(1, 40)) + ") AS done) AS c")
# COMMIT_EFFECTS, then durable_flow with $43-$49 (see ``_statements.with_flow``)
COMMIT_EFFECTS_FLOW: Final = with_flow(COMMIT_EFFECTS, 43)
# Each commit statement, and the one that also leases new actions (eager dispatch) with the
# three parameters after its own.
_LEASING: Final = {statement: leasing(statement, params) for statement, params in [
    (COMMIT, 25), (COMMIT_FLOW, 32), (COMMIT_EFFECTS, 42), (COMMIT_EFFECTS_FLOW, 49)]}


def leased_variant(statement: str) -> str:
    """The commit ``statement`` that also leases the commit's eager actions."""
    return _LEASING[statement]


def effect_columns(cancelled_actions: Sequence[int], starts: Sequence[Start],
                   signals: Sequence[Signal], now: float, split: Split) -> list[Any]:
    """Parameters $23-$39 of :data:`COMMIT_EFFECTS`."""
    return [list(cancelled_actions), *_start_columns(starts, now, split),
            *_signal_columns(signals, now, split)]


def _start_columns(starts: Sequence[Start], now: float, split: Split) -> list[list[Any]]:
    started = [s.started for s in starts]
    on_started = [_maybe_split(s.on_started, now, split) for s in starts]
    on_exists = [_maybe_split(s.on_exists, now, split) for s in starts]
    return [[s.tenant for s in started], [s.workflow_id for s in started],
            [s.run_id for s in started], [route(s.workflow, s.queue) for s in started],
            [s.version for s in started],
            [encode_event(replace(s, seq=1, time=now)) for s in started],
            [head for head, _ in on_started], [tail for _, tail in on_started],
            [head for head, _ in on_exists], [tail for _, tail in on_exists]]


def _signal_columns(signals: Sequence[Signal], now: float, split: Split) -> list[list[Any]]:
    bodies = [split(s.event, now) for s in signals]
    return [[s.tenant for s in signals], [s.workflow_id for s in signals],
            [s.run_id for s in signals], [head for head, _ in bodies],
            [tail for _, tail in bodies], [s.dedup for s in signals]]


def _maybe_split(event: Event | None, now: float,
                 split: Split) -> tuple[bytes | None, bytes | None]:
    return (None, None) if event is None else split(event, now)
