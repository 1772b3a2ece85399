"""Histories recorded before priorities existed (no priority or fairness key in
``WorkflowStarted``, ``ChildInitiated`` or a call's options) decode with the defaults and replay
unchanged, also against code that now gives priorities and fairness keys."""

from __future__ import annotations

import json
from typing import Any

import durable
import durable.testing
from durable._history import (
    ActionScheduled, ChildInitiated, WorkflowStarted, decode_history_json, encode_history_json,
)
from durable._options import CallOptions


@durable.action(name="PrioReplayStep")
async def step(n: int) -> int:
    return n + 1


@durable.workflow(name="PrioReplayKid")
async def kid(ctx: durable.Context) -> str:
    return "kid"


def flow(priorities: bool) -> Any:
    """Workflow "PrioReplay" as it was (no priorities) or as it is now (with them)."""
    @durable.workflow(name="PrioReplay")
    async def prio_replay(ctx: durable.Context) -> list[Any]:
        extra: dict[str, Any] = {"priority": 5} if priorities else {}
        first = await ctx.run(step, 1, **extra)
        second = await ctx.run(step, 2, timeout=5.0, **extra)
        child = {"priority": 3, "fairness_key": "kid"} if priorities else {}
        done = await (await ctx.start_child(kid, id="prio-replay-kid", **child))
        return [first, second, done]
    return prio_replay


# What each event type held before priorities: the fields it then had (after its tag).
OLD_LENGTHS = {"WorkflowStarted": 12, "ChildInitiated": 11}
OLD_OPTIONS = 4  # CallOptions: retry, timeout, total_timeout, deadline


def as_recorded_before(history: list[Any]) -> bytes:
    """The history in the form of the version before priorities (shorter arrays)."""
    rows = json.loads(encode_history_json(history))
    for row in rows:
        if row[0] in OLD_LENGTHS:
            # the new fields at their defaults (WorkflowStarted's later trace and previous_run)
            assert row[OLD_LENGTHS[row[0]] + 1:] in ([0, None], [0, None, None],
                                                     [0, None, None, None])
            del row[OLD_LENGTHS[row[0]] + 1:]
        elif row[0] == "ActionScheduled" and row[-1] is not None:
            del row[-1][OLD_OPTIONS:]
    return json.dumps(rows).encode()


async def recorded_before() -> bytes:
    old = flow(priorities=False)
    async with durable.testing.Environment(workflows=[old, kid], actions=[step]) as env:
        handle = await env.client.start(old, id="prio-replay")
        assert await handle.result() == [2, 3, "kid"]
        return as_recorded_before(list(await handle.history()))


async def test_an_old_history_decodes_with_the_defaults() -> None:
    events = decode_history_json(await recorded_before())
    started = events[0]
    assert isinstance(started, WorkflowStarted)
    assert (started.priority, started.fairness_key) == (0, None)
    [initiated] = [e for e in events if isinstance(e, ChildInitiated)]
    assert (initiated.priority, initiated.fairness_key) == (0, None)
    options = [e.options for e in events if isinstance(e, ActionScheduled)]
    assert options == [None, CallOptions(timeout=5.0)]


async def test_an_old_history_replays_against_code_that_gives_priorities() -> None:
    history = await recorded_before()
    for priorities in (False, True):
        for strict in (False, True):
            result = durable.Replayer([flow(priorities), kid], [step],
                                      strict=strict).replay(history)
            assert result.done and result.workflow == "PrioReplay"
