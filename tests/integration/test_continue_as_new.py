"""Continue-as-new end to end, on every store and with Redis dispatch.

Each run's history stays bounded, the next run is created in the old run's last commit, the
handle follows the chain, older runs stay readable, unconsumed events are carried over, and
the old run's timers and actions end with it.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import pytest

import durable
from _support import eventually
from faults._checks import check_history
from durable._history import (
    ActionCompleted, TimerStarted, WorkflowContinuedAsNew, WorkflowStarted,
)
from durable.errors import WorkflowFailedError

from ._env import Env, env, env_spec  # noqa: F401 - fixtures

pytestmark = pytest.mark.integration

calls: dict[str, list[Any]] = defaultdict(list)


@durable.action(name="engine_can_step")
async def step(n: int) -> int:
    calls[durable.action_info().run_id].append(n)
    return n * 10


@durable.action(name="engine_can_slow")
async def slow(n: int) -> int:
    info = durable.action_info()
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        calls["slow"].append(("cancelled", info.cancelled))
        raise
    return n


@durable.workflow(name="EngineCounter", version="3")
async def counter(ctx: durable.Context, n: int, limit: int, total: int = 0) -> dict[str, Any]:
    total += await ctx.run(step, n)
    ctx.data["n"] = n
    if n + 1 < limit:
        ctx.continue_as_new(n + 1, limit, total)
    return {"total": total, "run": ctx.info.run_id, "from": ctx.info.continued_from}


@durable.workflow(name="EngineMailbox")
async def mailbox(ctx: durable.Context, got: list[Any], wanted: int) -> list[Any]:
    letter = await ctx.wait_for("letter")
    assert letter is not None
    got = [*got, letter.payload]
    if len(got) < wanted:
        ctx.continue_as_new(got, wanted)  # letters not taken yet go to the next run
    return got


@durable.workflow(name="EngineLeavesWork")
async def leaves_work(ctx: durable.Context, again: bool) -> str:
    if not again:
        asyncio.ensure_future(ctx.sleep(3600))
        asyncio.ensure_future(ctx.run(slow, 1))
        await ctx.wait_for("go")
        ctx.continue_as_new(True)
    await ctx.wait_for("done")
    return "second run"


@durable.workflow(name="EngineBadContinue")
async def bad_continue(ctx: durable.Context, n: int) -> None:
    ctx.continue_as_new("not a number")


WORKFLOWS = [counter, mailbox, leaves_work, bad_continue]
ACTIONS = [step, slow]


@pytest.fixture(autouse=True)
def _clear() -> None:
    calls.clear()


async def test_an_endless_workflow_keeps_a_bounded_history_and_the_handle_follows(
        env: Env) -> None:
    client = await env.start(WORKFLOWS, ACTIONS)
    handle = await client.start(counter, 0, 5, id="counter")
    result = await handle.result(timeout=30)
    assert result["total"] == sum(n * 10 for n in range(5))
    description = await handle.describe()
    assert (description.status, description.run_id, description.data) == (
        "completed", result["run"], {"n": 4})
    assert description.version == "3"
    last = await handle.history()
    assert len(last) <= 8  # one step per run, however long the chain
    # walk the chain back: every run is readable, each ends by naming the next
    runs = [description.run_id]
    started = last[0]
    assert isinstance(started, WorkflowStarted) and started.continued_from == result["from"]
    while started.continued_from is not None:
        previous = await handle.history(run_id=started.continued_from)
        ended = previous[-1]
        assert isinstance(ended, WorkflowContinuedAsNew) and ended.run_id == runs[-1]
        check_history(previous)
        runs.append(started.continued_from)
        started = previous[0]
        assert isinstance(started, WorkflowStarted)
    assert len(runs) == 5 and len(set(runs)) == 5
    assert [calls[run] for run in reversed(runs)] == [[0], [1], [2], [3], [4]]
    assert [r.workflow_id for r in await client.list()] == ["counter"]


async def test_events_not_taken_yet_are_carried_to_the_next_run(env: Env) -> None:
    client = await env.start(WORKFLOWS, ACTIONS)
    handle = await client.start(mailbox, [], 4, id="mailbox")
    for i in range(4):
        await handle.send("letter", i, idempotency_key=f"letter-{i}")
    assert await handle.result(timeout=30) == [0, 1, 2, 3]
    await handle.send("letter", 3, idempotency_key="letter-3")  # delivered before: no error


async def test_the_old_runs_timers_and_actions_end_with_it(env: Env) -> None:
    client = await env.start(WORKFLOWS, ACTIONS)
    handle = await client.start(leaves_work, False, id="leaves")
    await eventually(lambda: _pending(handle, "slow"), what="the slow action to be pending")
    first_run = (await handle.describe()).run_id
    await handle.send("go")
    await eventually(lambda: _run_changed(handle, first_run), what="the next run")
    await eventually(lambda: ("cancelled", True) in calls["slow"],
                     what="the old run's running action to be told")
    description = await handle.describe()
    assert (description.pending_timers, description.pending_actions) == ([], [])
    old = await handle.history(run_id=first_run)
    assert [type(e) for e in old if isinstance(e, TimerStarted)] == [TimerStarted]
    assert isinstance(old[-1], WorkflowContinuedAsNew)
    await handle.send("done")
    assert await handle.result(timeout=30) == "second run"
    assert not any(isinstance(e, ActionCompleted) for e in await handle.history())


async def test_bad_arguments_fail_the_run_that_continues(env: Env) -> None:
    client = await env.start(WORKFLOWS, ACTIONS)
    handle = await client.start(bad_continue, 1, id="bad")
    with pytest.raises(WorkflowFailedError) as info:
        await handle.result(timeout=30)
    assert info.value.error_type == "ValidationError" and "'n'" in info.value.error_message
    assert [type(e) for e in await handle.history()][0] is WorkflowStarted
    assert len([e for e in await handle.history() if isinstance(e, WorkflowStarted)]) == 1


async def _pending(handle: durable.WorkflowHandle[Any], name: str) -> bool:
    return any(a.name == f"engine_can_{name}" for a in (await handle.describe()).pending_actions)


async def _run_changed(handle: durable.WorkflowHandle[Any], run_id: str) -> bool:
    return (await handle.describe()).run_id != run_id


async def test_durable_show_shows_any_run_of_the_chain(
        tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from .test_versioning import await_main

    db = f"sqlite:///{tmp_path}/chain.db"
    async with durable.connect(db) as client:
        async with durable.Worker(client, WORKFLOWS, ACTIONS, poll_interval=0.02):
            handle = await client.start(counter, 0, 2, id="chain")
            await handle.result(timeout=30)
        first = (await handle.history())[0].continued_from
    assert await_main(["--db", db, "show", "chain"]) == 0
    out = capsys.readouterr().out
    assert f"continues run {first}" in out and "status:    completed" in out
    assert await_main(["--db", db, "show", "chain", "--run", first]) == 0
    out = capsys.readouterr().out
    assert "WorkflowContinuedAsNew" in out and "next run(1, 2, 0)" in out
    assert await_main(["--db", db, "show", "chain", "--run", "nope"]) == 1
    assert "has no run 'nope'" in capsys.readouterr().err
