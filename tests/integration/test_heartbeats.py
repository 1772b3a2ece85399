"""Long actions: ``action_info().heartbeat(details)`` and ``heartbeat_timeout`` on every store.

The details of an attempt's last heartbeat reach the next attempt (``heartbeat_details``); an
attempt that reports no heartbeat within its action's ``heartbeat_timeout`` times out and is
retried, one that keeps reporting does not; details that cannot be encoded are a
``PayloadError`` at the call; a bad ``heartbeat_timeout`` is a typed error at declaration.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import pytest

import durable
from durable.errors import ArgumentTypeError, PayloadError, UsageError, ValidationError

from ._env import Env, env, env_spec  # noqa: F401 - fixtures

QUICK = durable.Retry(attempts=3, initial=0.01, maximum=0.01)
_cancelled: list[str] = []  # workflow ids whose silent attempt was cancelled


@durable.action(name="beats_test_counter", retry=QUICK)
async def counter(total: int) -> dict[str, Any]:
    """The first attempt reports step 3, then fails; the next one resumes from there."""
    info = durable.action_info()
    if info.attempt == 1:
        for i in range(3):
            info.heartbeat({"next": i + 1})
        await asyncio.sleep(0.5)  # the worker records the last details meanwhile
        raise RuntimeError("the first attempt fails after step 3")
    return {"attempt": info.attempt, "resumed": info.heartbeat_details}


@durable.action(name="beats_test_silent", retry=QUICK, heartbeat_timeout=0.3)
async def silent() -> int:
    """The first attempt never reports; the second returns at once."""
    info = durable.action_info()
    if info.attempt == 1:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            _cancelled.append(info.workflow_id)
            raise
    return info.attempt


@durable.action(name="beats_test_steady", retry=QUICK,
                heartbeat_timeout=timedelta(milliseconds=300))
def steady() -> int:
    """A plain function that runs well past its heartbeat timeout, reporting all along."""
    info = durable.action_info()
    for _ in range(8):
        time.sleep(0.1)
        info.heartbeat()
    return info.attempt


@durable.action(name="beats_test_unencodable", retry=QUICK)
async def unencodable() -> str:
    try:
        durable.action_info().heartbeat({"fn": object()})
    except PayloadError as exc:
        return type(exc).__name__
    return "encoded"


@durable.workflow(name="BeatsTestFlow")
async def flow(ctx: durable.Context, which: str) -> Any:
    if which == "counter":
        return await ctx.run(counter, 5)
    if which == "silent":
        return await ctx.run(silent)
    if which == "steady":
        return await ctx.run(steady)
    return await ctx.run(unencodable)


ACTIONS = [counter, silent, steady, unencodable]


async def run(env: Env, which: str) -> Any:
    client = await env.start([flow], ACTIONS)
    handle = await client.start(flow, which, id=f"{which}-{env.tenant}")
    return handle, await handle.result(timeout=30)


async def test_the_next_attempt_reads_the_last_heartbeat_details(env: Env) -> None:
    _, result = await run(env, "counter")
    assert result == {"attempt": 2, "resumed": {"next": 3}}


async def test_a_missed_heartbeat_times_the_attempt_out(env: Env) -> None:
    handle, result = await run(env, "silent")
    assert result == 2
    assert handle.workflow_id in _cancelled  # the silent attempt was stopped


async def test_steady_heartbeats_keep_an_attempt_alive(env: Env) -> None:
    _, result = await run(env, "steady")
    assert result == 1


async def test_details_that_cannot_be_encoded_are_a_payload_error(env: Env) -> None:
    _, result = await run(env, "unencodable")
    assert result == "PayloadError"


@pytest.mark.parametrize("bad, error", [(0, ValidationError), (-1, ValidationError),
                                        (float("inf"), ValidationError),
                                        ("1s", ArgumentTypeError), (True, ArgumentTypeError)])
def test_bad_heartbeat_timeouts_are_typed_errors(bad: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        durable.action(heartbeat_timeout=bad)


def test_heartbeat_outside_an_action_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        durable.action_info().heartbeat({"next": 1})
    info = durable.ActionInfo("k", "a", 1, "wf", "run", "t")
    info.heartbeat({"next": 1})  # outside a worker it only checks the details
    with pytest.raises(PayloadError):
        info.heartbeat(object())
