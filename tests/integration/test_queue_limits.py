"""Queue limits and limited actions inline, end to end on every store (and with Redis):
``Worker(queue_limits=...)`` bounds the attempts of every action on a queue; a limited action
runs inline while its limits have room, and never beyond them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import durable

from ._env import Env, env, env_spec  # noqa: F401 - fixtures

GATES: dict[str, asyncio.Event] = {}
RUNNING: dict[str, list[int]] = {}  # test key -> [running now, most seen at once]


def enter(key: str) -> None:
    seen = RUNNING.setdefault(key, [0, 0])
    seen[0] += 1
    seen[1] = max(seen)


@durable.action(name="QLSend", queue="ql-mail")
async def send(gate: str) -> str:
    enter(gate)
    await GATES.setdefault(gate, asyncio.Event()).wait()
    RUNNING[gate][0] -= 1
    return "send"


@durable.action(name="QLNotify", queue="ql-mail")
async def notify(gate: str) -> str:
    enter(gate)
    await GATES.setdefault(gate, asyncio.Event()).wait()
    RUNNING[gate][0] -= 1
    return "notify"


@durable.workflow(name="QLBoth")
async def both(ctx: durable.Context, gate: str) -> list[str]:
    return list(await asyncio.gather(ctx.run(send, gate), ctx.run(notify, gate)))


async def test_a_queue_limit_holds_back_another_action_and_describe_says_so(env: Env) -> None:
    client = await env.start([both], [send, notify],
                             queue_limits={"ql-mail": durable.QueueLimit(max_concurrent=1)})
    gate = f"{env.kind}-{env.tenant}"
    handle = await client.start(both, gate)
    expected = "on queue 'ql-mail' waits for queue 'ql-mail''s limit of 1 running at once"
    try:
        for _ in range(3000):
            waiting = (await handle.describe()).waiting
            if RUNNING.get(gate, [0])[0] == 1 and any(expected in why for why in waiting):
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError(waiting, RUNNING.get(gate))
        assert RUNNING[gate] == [1, 1]  # one of the two runs; the other waits for the queue
    finally:  # let the attempts end, so that the worker can stop
        GATES.setdefault(gate, asyncio.Event()).set()
    assert await handle.result(timeout=30) == ["send", "notify"]
    assert RUNNING[gate][1] == 1


@durable.action(name="QLQuick", timeout=2.0, max_concurrent=1000, rate="100000/s")
async def quick(n: int) -> int:
    return n + 1


@durable.workflow(name="QLThreeQuick")
async def three_quick(ctx: durable.Context, n: int) -> int:
    for _ in range(3):
        n = await ctx.run(quick, n)
    return n


async def test_a_limited_action_runs_inline_while_its_limits_have_room(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    client = await env.start([three_quick], [quick], lease=10.0)
    claimed: list[Any] = []
    claim = client.store.claim_limited

    async def counted(*args: Any, **kwargs: Any) -> Any:
        claimed.extend(await claim(*args, **kwargs))
        return claimed[len(claimed):]  # nothing: what it claimed stays queued for others

    monkeypatch.setattr(client.store, "claim_limited", counted)
    handle = await client.start(three_quick, 1)
    assert await handle.result(timeout=30) == 4
    assert claimed == []  # each attempt ran inline, in the workflow task that scheduled it


@durable.action(name="QLBrief", timeout=2.0, queue="ql-brief")
async def brief(key: str) -> int:
    enter(key)
    await asyncio.sleep(0.02)
    RUNNING[key][0] -= 1
    return 1


@durable.workflow(name="QLManyBrief")
async def many_brief(ctx: durable.Context, key: str, n: int) -> int:
    return sum(await asyncio.gather(*(ctx.run(brief, key) for _ in range(n))))


async def test_inline_attempts_never_exceed_a_queue_limit(env: Env) -> None:
    client = await env.start([many_brief], [brief], lease=10.0,
                             queue_limits={"ql-brief": durable.QueueLimit(max_concurrent=2)})
    key = f"brief-{env.kind}-{env.tenant}"
    handles = [await client.start(many_brief, key, 6) for _ in range(3)]
    assert [await h.result(timeout=60) for h in handles] == [6, 6, 6]
    assert RUNNING[key][0] == 0
    assert RUNNING[key][1] == 2, RUNNING[key]  # the limit bound, and was never exceeded
