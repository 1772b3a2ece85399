"""``ctx.wait_condition``: checked when awaited and after every input, woken in the same order
on replay; a timeout is a durable timer; a predicate that raises fails the wait."""

from __future__ import annotations

import asyncio

import pytest

import durable
from durable.testing import Environment


@durable.action
async def bump(n: int) -> int:
    return n + 1


@durable.workflow(name="CondCounter")
async def counter(ctx: durable.Context, target: int) -> list[str]:
    seen: list[str] = []
    count = 0

    async def work() -> None:
        nonlocal count
        while count < target:
            count = await ctx.run(bump, count)
            seen.append(f"count={count}")

    worker = asyncio.ensure_future(work())
    reached = await ctx.wait_condition(lambda: count >= 2)
    seen.append(f"reached {reached} at {count}")
    ctx.set_state(f"count {count}")
    await worker
    return seen


@durable.workflow(name="CondTimeout")
async def times_out(ctx: durable.Context) -> list[object]:
    got = await ctx.wait_condition(lambda: False, timeout=30)
    event = await ctx.wait_for("go", timeout=0)
    return [got, ctx.now().timestamp(), event is None]


@durable.workflow(name="CondRaises")
async def raises(ctx: durable.Context) -> str:
    ready = False

    def predicate() -> bool:
        if ready:
            raise ValueError("broken predicate")
        return False

    async def later() -> None:
        nonlocal ready
        await ctx.sleep(5)
        ready = True

    asyncio.ensure_future(later())
    try:
        await ctx.wait_condition(predicate)
    except ValueError as exc:
        return f"raised {exc}"
    return "no"


@durable.workflow(name="CondUpdates")
async def waits_for_updates(ctx: durable.Context) -> int:
    total = 0

    async def add(n: int) -> int:
        nonlocal total
        await ctx.run(bump, n)
        total += n
        return total

    ctx.on_update("add", add)
    await ctx.wait_condition(lambda: total >= 3)
    await ctx.wait_condition(ctx.all_handlers_finished)
    return total


async def _run(wf: object, *args: object, always_replay: bool = False) -> tuple[object, list]:
    async with Environment([wf], [bump], always_replay=always_replay) as env:
        handle = await env.client.start(wf, *args, id="c")
        result = await handle.result()
        return result, await handle.history()


@pytest.mark.parametrize("always_replay", [False, True])
async def test_a_condition_wakes_as_soon_as_the_state_makes_it_true(always_replay: bool) -> None:
    result, history = await _run(counter, 4, always_replay=always_replay)
    assert result == ["count=1", "count=2", "reached True at 2", "count=3", "count=4"]
    assert durable.Replayer([counter], [bump]).replay(history).state == "count 2"


async def test_a_condition_that_never_holds_times_out_on_a_durable_timer() -> None:
    result, history = await _run(times_out)
    got, now, no_event = result  # type: ignore[misc]
    assert got is False and no_event
    assert now - history[0].time == pytest.approx(30, abs=1)
    assert durable.Replayer([times_out]).replay(history).done


async def test_a_predicate_that_raises_fails_the_wait_with_its_exception() -> None:
    result, history = await _run(raises)
    assert result == "raised broken predicate"
    assert durable.Replayer([raises]).replay(history).done


async def test_all_handlers_finished_waits_for_updates_in_flight() -> None:
    async with Environment([waits_for_updates], [bump]) as env:
        handle = await env.client.start(waits_for_updates, id="u")
        results = await asyncio.gather(handle.update("add", 1), handle.update("add", 2))
        assert sorted(results) == [1, 3] or sorted(results) == [2, 3]
        assert await handle.result() == 3
        history = await handle.history()
    assert durable.Replayer([waits_for_updates], [bump]).replay(history).done


async def test_the_predicate_must_be_callable() -> None:
    @durable.workflow(name="CondBad")
    async def bad(ctx: durable.Context) -> str:
        try:
            await ctx.wait_condition(True)  # type: ignore[arg-type]
        except durable.errors.ArgumentTypeError as exc:
            return str(exc)
        return "no"

    result, _ = await _run(bad)
    assert "a function of no arguments" in str(result)
