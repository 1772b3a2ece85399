"""Priorities and fairness keys end to end, on every store: what a start gives is inherited
by the execution's actions, children and next runs unless a call gives another; bad values
are typed errors at client.start, ctx.run and ctx.start_child."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, strategies as st

import durable
import durable.testing
from durable._cli._render import summary
from durable._history import ActionScheduled, ChildInitiated
from durable._validate import MAX_PRIORITY, MIN_PRIORITY, check_priority
from durable.errors import ArgumentTypeError, ValidationError

from ._env import Env, env, env_spec  # noqa: F401 - fixtures

NOWHERE = "prio-nowhere"  # a queue no worker serves: its tasks stay pending, to be described


@durable.action(name="PrioPark")
async def park(n: int) -> int:
    return n


@durable.workflow(name="PrioChild")
async def prio_child(ctx: durable.Context) -> list[Any]:
    return [ctx.info.priority, ctx.info.fairness_key]


@durable.workflow(name="PrioParent")
async def prio_parent(ctx: durable.Context) -> list[Any]:
    inherited = await (await ctx.start_child(prio_child, id=f"{ctx.info.workflow_id}-a"))
    given = await (await ctx.start_child(prio_child, id=f"{ctx.info.workflow_id}-b",
                                         priority=-2, fairness_key="kid"))
    ctx.set_state("children done")
    await ctx.run(park, 1, queue=NOWHERE)  # parked: never runs
    return [inherited, given]


@durable.workflow(name="PrioParked")
async def parked(ctx: durable.Context) -> None:
    await ctx.run(park, 1, queue=NOWHERE, priority=9)


@durable.workflow(name="PrioLoop")
async def prio_loop(ctx: durable.Context, left: int) -> list[Any]:
    if left:
        ctx.continue_as_new(left - 1)
    return [ctx.info.priority, ctx.info.fairness_key, ctx.info.continued_from is not None]


async def test_actions_children_and_next_runs_inherit_priority_and_key(env: Env) -> None:
    client = await env.start([prio_parent, prio_child, prio_loop, parked], [park])
    parent = await client.start(prio_parent, id="prio-parent", priority=7, fairness_key="k")
    for _ in range(300):
        info = await parent.describe()
        if info.state == "children done" and info.pending_actions:
            break
        await env_sleep()
    [action] = info.pending_actions
    assert (info.priority, info.fairness_key) == (7, "k")
    assert (action.priority, action.fairness_key) == (7, "k")  # inherited by the action
    assert [(c.priority, c.fairness_key) for c in [
        e for e in await parent.history() if isinstance(e, ChildInitiated)]] == [
        (7, "k"), (-2, "kid")]
    inherited = await client.get_handle("prio-parent-a").result(timeout=30)
    given = await client.get_handle("prio-parent-b").result(timeout=30)
    assert (inherited, given) == ([7, "k"], [-2, "kid"])
    loop = await client.start(prio_loop, 2, priority=3, fairness_key="again")
    assert await loop.result(timeout=30) == [3, "again", True]


async def test_a_call_priority_is_recorded_and_overrides_the_workflows(env: Env) -> None:
    client = await env.start([parked], [park])
    handle = await client.start(parked, priority=1)
    for _ in range(300):
        info = await handle.describe()
        if info.pending_actions:
            break
        await env_sleep()
    [action] = info.pending_actions
    assert (action.priority, action.fairness_key) == (9, None)
    assert (info.priority, info.fairness_key) == (1, None)
    [scheduled] = [e for e in await handle.history() if isinstance(e, ActionScheduled)]
    assert scheduled.options is not None and scheduled.options.priority == 9
    assert "priority:  1" in summary(info)  # durable show
    keyed = await client.start(parked, priority=0, fairness_key="shop-1")
    assert "priority:  0  fairness key=shop-1" in summary(await keyed.describe())
    plain = await client.start(parked)
    assert not [line for line in summary(await plain.describe()) if "priority" in line]


async def env_sleep() -> None:
    await asyncio.sleep(0.02)


# ---- bad input ------------------------------------------------------------------------------

BAD_PRIORITIES: list[tuple[Any, type[Exception]]] = [
    (True, ArgumentTypeError), ("1", ArgumentTypeError), (1.0, ArgumentTypeError),
    (None, ArgumentTypeError), (2**31, ValidationError), (-(2**31) - 1, ValidationError),
]
BAD_KEYS: list[tuple[Any, type[Exception]]] = [
    (5, ArgumentTypeError), (b"k", ArgumentTypeError), ("", ValidationError),
    ("a\nb", ValidationError), ("x" * 513, ValidationError),
]


@pytest.mark.parametrize("value, error", BAD_PRIORITIES)
async def test_client_start_refuses_a_bad_priority(value: Any, error: type[Exception]) -> None:
    async with durable.testing.Environment(workflows=[prio_child]) as test_env:
        with pytest.raises(error) as raised:
            await test_env.client.start(prio_child, id="bad", priority=value)
        assert "priority" in str(raised.value)
        assert await test_env.client.list() == []  # nothing written


@pytest.mark.parametrize("value, error", BAD_KEYS)
async def test_client_start_refuses_a_bad_fairness_key(value: Any,
                                                       error: type[Exception]) -> None:
    async with durable.testing.Environment(workflows=[prio_child]) as test_env:
        with pytest.raises(error):
            await test_env.client.start(prio_child, id="bad", fairness_key=value)
        assert await test_env.client.list() == []


@pytest.mark.parametrize("value, error", [v for v in BAD_PRIORITIES if v[0] is not None])
async def test_ctx_run_refuses_a_bad_priority(value: Any, error: type[Exception]) -> None:
    @durable.workflow(name="PrioBadCall")
    async def bad(ctx: durable.Context) -> str:
        try:
            await ctx.run(park, 1, priority=value)
        except error as exc:
            return type(exc).__name__
        return "accepted"

    async with durable.testing.Environment(workflows=[bad], actions=[park]) as test_env:
        assert await (await test_env.client.start(bad)).result() == error.__name__


@pytest.mark.parametrize("option, value, error", [
    *(("priority", v, e) for v, e in BAD_PRIORITIES if v is not None),
    *(("fairness_key", v, e) for v, e in BAD_KEYS),
])
async def test_start_child_refuses_bad_options(option: str, value: Any,
                                               error: type[Exception]) -> None:
    @durable.workflow(name="PrioBadChild")
    async def bad(ctx: durable.Context) -> str:
        try:
            await ctx.start_child(prio_child, **{option: value})
        except error as exc:
            return type(exc).__name__
        return "accepted"

    async with durable.testing.Environment(workflows=[bad, prio_child]) as test_env:
        handle = await test_env.client.start(bad)
        assert await handle.result() == error.__name__
        assert not [e for e in await handle.history() if isinstance(e, ChildInitiated)]


@given(st.one_of(st.integers(), st.booleans(), st.floats(), st.text(), st.none()))
def test_check_priority_takes_exactly_the_ints_of_the_int32_range(value: Any) -> None:
    if type(value) is int and MIN_PRIORITY <= value <= MAX_PRIORITY:
        assert check_priority(value, "priority") == value
    else:
        expected = ValidationError if type(value) is int else ArgumentTypeError
        with pytest.raises(expected):
            check_priority(value, "priority")


RAN: dict[str, list[str]] = {}  # tenant -> workflow ids, in the order their first task ran


@durable.workflow(name="PrioFair")
async def fair(ctx: durable.Context) -> None:
    ran = RAN.setdefault(ctx.info.tenant, [])
    if ctx.info.workflow_id not in ran:
        ran.append(ctx.info.workflow_id)


async def test_a_backlog_of_one_key_does_not_hold_back_another_keys_work(env: Env) -> None:
    """A claim takes its tasks in turns: the worker's first claim (three free slots) takes the
    urgent one, then one per key, though "big" has 50 older ones (see the README on claims
    of one task)."""
    if env.kind == "redis":
        pytest.skip("with Redis, hints are taken in the order they arrive (README)")
    client = await env.client()
    for i in range(50):
        await client.start(fair, id=f"big-{i}", fairness_key="big")
    await client.start(fair, id="urgent", priority=1)
    await client.start(fair, id="small", fairness_key="small")
    await env.worker(client, [fair], [], concurrency=3)
    for _ in range(1000):
        if len(RAN.get(env.tenant, [])) == 52:
            break
        await env_sleep()
    ran = RAN[env.tenant]
    # the first claim: priority first, then one per key (the three run at once, in any order)
    assert sorted(ran[:3]) == ["big-0", "small", "urgent"]
    assert [w for w in ran if w.startswith("big")] == [f"big-{i}" for i in range(50)]
