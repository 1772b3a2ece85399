"""Per-call options of ``ctx.run`` (retry, timeout, total_timeout), recorded in the history,
and unlimited retry (``Retry(attempts=None)``), on every store."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import durable
import durable.testing
from durable._history import ActionScheduled
from durable.errors import ArgumentTypeError, InvalidArgumentError, ValidationError

from ._env import Env, env, env_spec  # noqa: F401 - fixtures

FAILS: dict[str, int] = {}  # call tag -> failures left before it succeeds
ATTEMPTS: dict[str, int] = {}
FAST = durable.Retry(attempts=None, initial=0.01, backoff=2.0, maximum=0.02)


@durable.action(name="OptionsFlaky", retry=durable.Retry(attempts=2, initial=0.01))
async def flaky(tag: str) -> str:
    ATTEMPTS[tag] = ATTEMPTS.get(tag, 0) + 1
    if FAILS.get(tag, 0) > 0:
        FAILS[tag] -= 1
        raise RuntimeError(f"{tag} not yet")
    return tag


@durable.action(name="OptionsSlow", timeout=30.0, retry=durable.Retry(attempts=1))
async def slow(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "slept"


@durable.workflow(name="OptionsFlow")
async def options_flow(ctx: durable.Context, tag: str) -> str:
    # declared: 2 attempts; this call retries without limit
    return await ctx.run(flaky, tag, retry=FAST)


@durable.workflow(name="OptionsDeclared")
async def declared(ctx: durable.Context, tag: str) -> str:
    try:
        return await ctx.run(flaky, tag)
    except durable.errors.ActionFailedError as exc:
        return f"failed after {exc.attempts}"


@durable.workflow(name="OptionsBounded")
async def bounded(ctx: durable.Context, tag: str) -> str:
    try:
        return await ctx.run(flaky, tag, retry=FAST, total_timeout=0.5)
    except durable.errors.ActionFailedError:
        return "gave up"


@durable.workflow(name="OptionsTimeout")
async def timed(ctx: durable.Context) -> str:
    try:
        return await ctx.run(slow, 5.0, timeout=0.05)
    except durable.errors.ActionFailedError as exc:
        return exc.error_type


async def test_a_call_retries_without_limit_where_the_declaration_stops(env: Env) -> None:
    client = await env.start([options_flow, declared], [flaky])
    tag = f"{env.kind}-unlimited"
    FAILS[tag] = 12
    handle = await client.start(options_flow, tag)
    assert await handle.result(timeout=30) == tag
    assert ATTEMPTS[tag] == 13
    [scheduled] = [e for e in await handle.history() if isinstance(e, ActionScheduled)]
    assert scheduled.options is not None and scheduled.options.retry is not None
    assert scheduled.options.retry.attempts is None  # recorded with the call
    FAILS[tag + "-declared"] = 12
    plain = await client.start(declared, tag + "-declared")
    assert await plain.result(timeout=30) == "failed after 2"


async def test_total_timeout_ends_unlimited_retries(env: Env) -> None:
    client = await env.start([bounded], [flaky])
    tag = f"{env.kind}-bounded"
    FAILS[tag] = 10**9
    handle = await client.start(bounded, tag)
    assert await handle.result(timeout=30) == "gave up"
    assert ATTEMPTS[tag] >= 2


async def test_a_call_shortens_the_declared_timeout(env: Env) -> None:
    client = await env.start([timed], [slow])
    assert await (await client.start(timed)).result(timeout=30) == "TimeoutError"


@pytest.mark.parametrize("options, error", [
    ({"retry": 3}, ArgumentTypeError), ({"timeout": "1s"}, ArgumentTypeError),
    ({"timeout": 0}, ValidationError), ({"total_timeout": -1.0}, ValidationError),
    ({"total_timeout": float("nan")}, ValidationError), ({"queue": ""}, ValidationError),
])
async def test_bad_call_options_fail_the_workflow_with_a_typed_error(
        options: dict[str, Any], error: type[Exception]) -> None:
    @durable.workflow(name="OptionsBad")
    async def bad(ctx: durable.Context) -> str:
        try:
            await ctx.run(flaky, "x", **options)
        except error as exc:
            return type(exc).__name__
        return "accepted"

    async with durable.testing.Environment(workflows=[bad], actions=[flaky]) as test_env:
        assert await (await test_env.client.start(bad)).result() == error.__name__


@pytest.mark.parametrize("attempts", [0, -1, 1.5, True])
def test_retry_attempts_are_none_or_at_least_one(attempts: Any) -> None:
    with pytest.raises((InvalidArgumentError, ArgumentTypeError)):
        durable.Retry(attempts=attempts)
    assert durable.Retry(attempts=None).retries(RuntimeError(), 10**6)
    assert durable.Retry(attempts=None, maximum=7.0).delay(10**6) == 7.0


GATES: dict[str, asyncio.Event] = {}


@durable.action(name="OptionsOneAtATime", max_concurrent=1)
async def one_at_a_time(gate: str) -> str:
    await GATES.setdefault(gate, asyncio.Event()).wait()
    return gate


@durable.workflow(name="OptionsTwoCalls")
async def two_calls(ctx: durable.Context, gate: str) -> list[str]:
    ctx.set_state("calling")
    return list(await asyncio.gather(ctx.run(one_at_a_time, gate), ctx.run(one_at_a_time, gate)))


async def test_describe_says_when_a_call_waits_for_its_limit(env: Env) -> None:
    client = await env.start([two_calls], [one_at_a_time])
    gate = f"{env.kind}-gate"
    handle = await client.start(two_calls, gate)
    expected = "action 'OptionsOneAtATime' on queue 'default' waits: at its limit of 1 running at once"
    for _ in range(2000):
        if expected in (await handle.describe()).waiting:
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError((await handle.describe()).waiting)
    GATES.setdefault(gate, asyncio.Event()).set()
    assert await handle.result(timeout=30) == [gate, gate]
