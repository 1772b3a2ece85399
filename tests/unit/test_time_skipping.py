"""``durable.testing.Environment``: virtual time that skips idle waits, and test doubles."""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import durable
from durable._history import ActionCompleted, TimerFired, TimerStarted
from durable.errors import (
    DurableError, UnknownActionError, UnknownWorkflowError, ValidationError, WorkflowHeldError,
)
from durable.testing import Environment, VirtualClock

from _support import eventually

START = datetime(2030, 1, 1, tzinfo=timezone.utc)
DAY = 86400.0


@durable.workflow
async def month_long(ctx: durable.Context) -> list[str]:
    before = ctx.now()
    await ctx.sleep(timedelta(days=30))
    return [before.isoformat(), ctx.now().isoformat()]


@durable.workflow
async def approval(ctx: durable.Context, days: float) -> str:
    ctx.set_state("waiting")
    decision = await ctx.wait_for("Approve", timeout=timedelta(days=days))
    return "expired" if decision is None else "approved"


def test_virtual_clock_moves_only_forward() -> None:
    clock = VirtualClock(START)
    assert clock() == START.timestamp() and clock.now() == START
    clock.advance(timedelta(hours=1))
    clock.advance(30)
    assert clock.now() == START + timedelta(hours=1, seconds=30)
    with pytest.raises(ValueError, match="never goes back"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="never goes back"):
        clock.advance_to(START)
    clock.advance_to(datetime(2031, 1, 1))  # naive means UTC
    assert clock.now() == datetime(2031, 1, 1, tzinfo=timezone.utc)
    assert VirtualClock(1000.0)() == 1000.0


async def test_a_thirty_day_sleep_passes_at_once() -> None:
    async with Environment(workflows=[month_long], start=START) as env:
        handle = await env.client.start(month_long, id="m")
        before, after = await handle.result(timeout=10)
        assert datetime.fromisoformat(before) == START
        assert datetime.fromisoformat(after) == START + timedelta(days=30)
        assert env.now() == START + timedelta(days=30)
        events = await handle.history()
        started = next(e for e in events if isinstance(e, TimerStarted))
        fired = next(e for e in events if isinstance(e, TimerFired))
        assert started.fire_at == fired.time == START.timestamp() + 30 * DAY


async def test_wait_for_with_a_timeout_of_days_times_out() -> None:
    async with Environment(workflows=[approval], start=START) as env:
        handle = await env.client.start(approval, 3.0)
        assert await handle.result(timeout=10) == "expired"
        assert env.now() == START + timedelta(days=3)


async def test_what_the_test_does_between_waits_happens_at_one_instant() -> None:
    async with Environment(workflows=[approval], start=START) as env:
        handle = await env.client.start(approval, 3.0)
        await env.wait_idle()
        assert (await handle.describe()).state == "waiting"
        await handle.send("Approve")
        assert await handle.result(timeout=10) == "approved"
        assert env.now() == START


attempts: list[tuple[int, float]] = []


@durable.action(retry=durable.Retry(attempts=4, initial=3600.0, backoff=2.0, maximum=DAY))
async def flaky_service() -> str:
    info = durable.action_info()
    attempts.append((info.attempt, 0.0))
    if info.attempt < 4:
        raise ConnectionError(f"down (attempt {info.attempt})")
    return "ok"


# The same, with its first attempt run inside the workflow task (the inline fast path).
@durable.action(inline=True, retry=flaky_service.__durable_action__.retry)
async def flaky_inline() -> str:
    return await flaky_service()


@durable.workflow
async def calls_flaky(ctx: durable.Context, inline: bool) -> str:
    result = await ctx.run(flaky_inline if inline else flaky_service)
    ctx.data["done_at"] = ctx.now().isoformat()
    return result


@pytest.mark.parametrize("inline", [False, True], ids=["queued", "inline"])
async def test_retry_backoff_delays_are_skipped(inline: bool) -> None:
    attempts.clear()
    async with Environment(workflows=[calls_flaky], actions=[flaky_service, flaky_inline],
                           start=START) as env:
        handle = await env.client.start(calls_flaky, inline)
        assert await handle.result(timeout=10) == "ok"
        assert [a for a, _ in attempts] == [1, 2, 3, 4]
        waited = timedelta(hours=1 + 2 + 4)  # 3600 s, doubled per retry
        assert env.now() == START + waited
        assert (await handle.describe()).data["done_at"] == (START + waited).isoformat()
        completed = next(e for e in await handle.history() if isinstance(e, ActionCompleted))
        assert completed.attempt == 4 and completed.time == (START + waited).timestamp()


@durable.workflow
async def clock_reader(ctx: durable.Context) -> list[float]:
    seen = [ctx.now().timestamp()]
    await asyncio.sleep(3600)  # plain asyncio.sleep is a durable timer too
    seen.append(ctx.now().timestamp())
    await asyncio.gather(ctx.sleep(DAY), ctx.sleep(2 * DAY))
    seen.append(ctx.now().timestamp())
    return seen


async def test_ctx_now_follows_the_virtual_clock() -> None:
    async with Environment(workflows=[clock_reader], start=START) as env:
        handle = await env.client.start(clock_reader)
        t0 = START.timestamp()
        assert await handle.result(timeout=10) == [t0, t0 + 3600, t0 + 3600 + 2 * DAY]


@durable.workflow
async def two_steps(ctx: durable.Context) -> str:
    await ctx.sleep(timedelta(hours=1))
    ctx.set_state("one")
    await ctx.sleep(timedelta(hours=1))
    ctx.set_state("two")
    return "done"


async def test_env_sleep_fires_what_is_due_on_the_way_in_order() -> None:
    async with Environment(workflows=[two_steps], start=START, time_skipping=False) as env:
        handle = await env.client.start(two_steps)
        await env.sleep(timedelta(minutes=90))
        assert env.now() == START + timedelta(minutes=90)
        assert (await handle.describe()).state == "one"
        await env.sleep(3600)
        assert (await handle.describe()).state == "two"
        assert await handle.result(timeout=10) == "done"
        assert env.now() == START + timedelta(minutes=150)


async def test_without_time_skipping_result_does_not_move_the_clock() -> None:
    async with Environment(workflows=[two_steps], start=START, time_skipping=False) as env:
        handle = await env.client.start(two_steps)
        with pytest.raises(TimeoutError):
            await handle.result(timeout=0.2)
        assert env.now() == START
        with pytest.raises(ValueError, match="negative"):
            await env.sleep(-1)


gate: asyncio.Event | None = None
running = False


@durable.action
async def waits_in_real_time() -> str:
    global running
    running = True
    assert gate is not None
    await gate.wait()
    return "released"


@durable.workflow
async def races_a_day(ctx: durable.Context) -> str:
    result, _ = await asyncio.gather(ctx.run(waits_in_real_time), ctx.sleep(DAY))
    return result


async def test_the_clock_holds_while_an_action_runs_in_real_time() -> None:
    global gate, running
    gate, running = asyncio.Event(), False
    async with Environment(workflows=[races_a_day], actions=[waits_in_real_time],
                           start=START) as env:
        handle = await env.client.start(races_a_day)
        result = asyncio.create_task(handle.result(timeout=10))
        try:
            await eventually(lambda: running, what="the action to start")
            for _ in range(100):  # everything runnable runs: a wrong clock would jump now
                await asyncio.sleep(0)
            assert env.now() == START and not result.done()
            gate.set()
            assert await result == "released"
        finally:
            result.cancel()
        assert env.now() == START + timedelta(days=1)
        completed = next(e for e in await handle.history() if isinstance(e, ActionCompleted))
        assert completed.time == START.timestamp()


async def test_concurrent_waits_share_one_clock() -> None:
    async with Environment(workflows=[approval, month_long], start=START) as env:
        short = await env.client.start(approval, 2.0)
        long = await env.client.start(month_long)
        assert await asyncio.gather(short.result(timeout=10), long.result(timeout=10)) == [
            "expired", [START.isoformat(), (START + timedelta(days=30)).isoformat()]]
        fired = [e for e in await short.history() if isinstance(e, TimerFired)]
        assert fired[0].time == START.timestamp() + 2 * DAY


# ---- test doubles ---------------------------------------------------------------------------


@durable.action(retry=durable.Retry(attempts=2, initial=60.0))
async def charge(account: str, cents: int, currency: str = "EUR") -> str:
    raise AssertionError("the real charge must not run in these tests")


@durable.action(name="billing_notify")  # a name no example module registers too
def notify(account: str, message: str) -> None:
    raise AssertionError("the real notify must not run in these tests")


@durable.workflow
async def billing(ctx: durable.Context, account: str) -> str:
    receipt = await ctx.run(charge, account, 500)
    await ctx.actions.billing_notify(account=account, message=receipt)
    return receipt


async def test_actions_can_be_swapped_for_doubles_by_function_or_name() -> None:
    charged: list[tuple[str, int, str]] = []
    told: list[str] = []

    async def fake_charge(account: str, cents: int, currency: str = "EUR") -> str:
        charged.append((account, cents, currency))
        if len(charged) == 1:
            raise ConnectionError("the fake fails once; the real retry policy applies")
        return f"receipt-{cents}"

    def fake_notify(account, message):  # unannotated is fine
        told.append(message)

    async with Environment(workflows=[billing], actions=[charge],
                           doubles={charge: fake_charge, "billing_notify": fake_notify},
                           start=START) as env:
        assert env.actions["charge"].retry == charge.__durable_action__.retry
        handle = await env.client.start(billing, "acct-1")
        assert await handle.result(timeout=10) == "receipt-500"
        assert charged == [("acct-1", 500, "EUR")] * 2 and told == ["receipt-500"]
        assert env.now() == START + timedelta(seconds=60)  # the retry delay, skipped


@pytest.mark.parametrize("fake, match", [
    (lambda account, cents: "x", "does not take the action's parameters"),
    (lambda account, amount, currency="EUR": "x", "does not take the action's parameters"),
    (lambda account, cents, currency: "x", "does not take the action's parameters"),
    (lambda account, cents, *, currency="EUR": "x", "does not take the action's parameters"),
    ("not callable", "must be a function"),
])
def test_a_double_must_have_the_action_signature(fake: Any, match: str) -> None:
    with pytest.raises(ValidationError, match=match) as info:
        Environment(workflows=[billing], doubles={charge: fake})
    assert info.value.action == "charge"


def test_a_double_may_not_annotate_other_types() -> None:
    async def wrong_param(account: str, cents: float, currency: str = "EUR") -> str:
        return ""

    async def wrong_return(account: str, cents: int, currency: str = "EUR") -> int:
        return 0

    with pytest.raises(ValidationError, match="parameter 'cents'") as info:
        Environment(doubles={charge: wrong_param})
    assert info.value.parameter == "cents"
    with pytest.raises(ValidationError, match="its return type"):
        Environment(doubles={charge: wrong_return})


def test_a_double_for_an_unknown_action_is_an_error() -> None:
    with pytest.raises(UnknownActionError, match="no_such_action"):
        Environment(doubles={"no_such_action": lambda: None})


# ---- errors instead of hangs ----------------------------------------------------------------


async def test_starting_a_workflow_the_environment_does_not_run_is_an_error() -> None:
    async with Environment(workflows=[approval]) as env:
        with pytest.raises(UnknownWorkflowError, match="does not run workflow 'month_long'"):
            await env.client.start(month_long)
        assert await env.client.list() == []


async def test_an_action_the_environment_does_not_run_is_an_error() -> None:
    async with Environment(workflows=[billing]) as env:  # no charge, no double
        handle = await env.client.start(billing, "acct-1")
        with pytest.raises(UnknownActionError, match="'charge'") as info:
            await handle.result(timeout=10)
        assert info.value.workflow_id == handle.workflow_id


versions = itertools.count()


@durable.action
async def step_a() -> None:
    pass


@durable.action
async def step_b() -> None:
    pass


@durable.workflow
async def unstable(ctx: durable.Context) -> None:
    # Non-deterministic on purpose: each run of the code picks another action.
    await ctx.run(step_a if next(versions) % 2 == 0 else step_b)
    await ctx.sleep(60)


async def test_an_execution_held_by_a_failing_workflow_task_is_an_error() -> None:
    async with Environment(workflows=[unstable], actions=[step_a, step_b]) as env:
        handle = await env.client.start(unstable)
        await env.wait_idle()
        env.worker.cache.clear()  # the next task replays, and the code now diverges
        with pytest.raises(WorkflowHeldError, match="diverged") as info:
            await handle.result(timeout=10)
        assert info.value.workflow_id == handle.workflow_id
        assert "NonDeterminismError" in info.value.task_error or "diverged" in info.value.task_error


async def test_env_sleep_raises_for_a_held_execution_instead_of_retrying_it() -> None:
    async with Environment(workflows=[unstable], actions=[step_a, step_b],
                           always_replay=True) as env:
        handle = await env.client.start(unstable)
        with pytest.raises(WorkflowHeldError) as info:
            await env.sleep(timedelta(days=30))
        assert info.value.workflow_id == handle.workflow_id


async def test_the_environment_must_be_entered() -> None:
    env = Environment(workflows=[approval])
    with pytest.raises(DurableError, match="async with"):
        env.client  # noqa: B018


async def test_always_replay_catches_non_deterministic_code_and_passes_the_rest() -> None:
    async with Environment(workflows=[unstable, clock_reader], actions=[step_a, step_b],
                           always_replay=True, start=START) as env:
        with pytest.raises(WorkflowHeldError, match="diverged"):
            await (await env.client.start(unstable)).result(timeout=10)
        t0 = START.timestamp()  # a deterministic workflow replays at every step and passes
        assert await (await env.client.start(clock_reader)).result(timeout=10) == [
            t0, t0 + 3600, t0 + 3600 + 2 * DAY]
