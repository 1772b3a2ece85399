"""Async action completion: ``action_info().complete_later()`` hands the outcome to a token's
holder; ``client.complete_action`` / ``fail_action`` / ``heartbeat_action``; the action's
timeouts still apply. On every store, with Redis and without."""

from __future__ import annotations

import asyncio
import pytest

import durable
from durable.errors import (
    ActionFailedError, ActionTokenError, ArgumentTypeError, PayloadError, UsageError,
)

from ._env import Env, env, env_spec  # noqa: F401 - fixtures

TOKENS: dict[str, list[str]] = {}


@durable.action(name="ACApprove", inline=False,
                retry=durable.Retry(attempts=2, initial=0.05, backoff=1.0))
async def approve(request: str) -> str:
    TOKENS.setdefault(request, []).append(durable.action_info().complete_later())
    return "ignored"  # the token's holder gives the result


@durable.action(name="ACTimed", inline=False, timeout=0.4,
                retry=durable.Retry(attempts=2, initial=0.01, backoff=1.0))
async def timed(request: str) -> str:
    TOKENS.setdefault(request, []).append(durable.action_info().complete_later())
    return "ignored"


@durable.workflow(name="ACFlow")
async def flow(ctx: durable.Context, request: str) -> str:
    return await ctx.run(approve, request)


@durable.workflow(name="ACTimedFlow")
async def timed_flow(ctx: durable.Context, request: str) -> str:
    return await ctx.run(timed, request)


async def _token(request: str, attempt: int = 1) -> str:
    for _ in range(2000):
        if len(TOKENS.get(request, ())) >= attempt:
            return TOKENS[request][attempt - 1]
        await asyncio.sleep(0.005)
    raise AssertionError(f"no token for {request} attempt {attempt}")


async def test_complete_from_outside_and_tokens_used_once(env: Env) -> None:
    client = await env.start([flow], [approve])
    request = f"{env.kind}-ok"
    handle = await client.start(flow, request, id=request)
    token = await _token(request)
    await client.heartbeat_action(token, {"progress": 1})
    await client.complete_action(token, "approved by ann")
    assert await handle.result(timeout=20) == "approved by ann"
    with pytest.raises(ActionTokenError) as used:
        await client.complete_action(token, "again")
    assert used.value.reason == "gone"
    assert len(TOKENS[request]) == 1  # no other attempt ran


async def test_fail_retries_then_fails(env: Env) -> None:
    client = await env.start([flow], [approve])
    request = f"{env.kind}-fail"
    handle = await client.start(flow, request, id=request)
    await client.fail_action(await _token(request), "rejected once")
    await client.fail_action(await _token(request, 2), ValueError("rejected twice"))
    with pytest.raises(durable.errors.WorkflowFailedError) as failed:
        await handle.result(timeout=20)
    assert isinstance(failed.value.__cause__, ActionFailedError) or \
        "rejected twice" in str(failed.value)


async def test_the_timeout_still_applies(env: Env) -> None:
    client = await env.start([timed_flow], [timed])
    request = f"{env.kind}-timeout"
    handle = await client.start(timed_flow, request, id=request)
    first = await _token(request)
    second = await _token(request, 2)  # the first timed out: the next attempt ran
    with pytest.raises(ActionTokenError):
        await client.complete_action(first, "too late")
    await client.complete_action(second, "in time")
    assert await handle.result(timeout=20) == "in time"


async def test_bad_tokens_and_results(env: Env) -> None:
    client = await env.client()
    with pytest.raises(ActionTokenError) as bad:
        await client.complete_action("not-a-token", 1)
    assert bad.value.reason == "malformed"
    with pytest.raises(ActionTokenError):
        await client.complete_action("dur1.AAAA", 1)
    with pytest.raises(ArgumentTypeError):
        await client.complete_action(42, 1)  # type: ignore[arg-type]
    await env.worker(client, [flow], [approve])
    request = f"{env.kind}-bad"
    handle = await client.start(flow, request, id=request)
    token = await _token(request)
    with pytest.raises(PayloadError):
        await client.complete_action(token, object())
    with pytest.raises(ArgumentTypeError):
        await client.fail_action(token, 3)  # type: ignore[arg-type]
    await client.complete_action(token, "still usable")  # nothing was lost
    assert await handle.result(timeout=20) == "still usable"


@durable.action(name="ACInline", inline=True)
async def inline_later() -> str:
    durable.action_info().complete_later()
    return "x"


@durable.workflow(name="ACInlineFlow")
async def inline_flow(ctx: durable.Context) -> str:
    try:
        return await ctx.run(inline_later, retry=durable.Retry(attempts=1))
    except ActionFailedError as exc:
        return exc.error_type


async def test_an_inline_attempt_cannot_complete_later(env: Env) -> None:
    client = await env.start([inline_flow], [inline_later])
    handle = await client.start(inline_flow, id=f"{env.kind}-inline")
    assert await handle.result(timeout=20) == UsageError.__name__
