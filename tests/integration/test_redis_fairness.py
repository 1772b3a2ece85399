"""Fairness on the Redis path: one tenant's backlog of hints does not hold another tenant's
ready task back by more than one round of claims (``durable._dispatch._fair``).

Runs on single Redis and on the Redis Cluster, with the memory store as the source of truth;
the assertions are on which tasks each call of ``receive`` claims, in order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

import durable
from durable import Client
from durable._dispatch import ClaimSpec, RedisDispatcher, _keys
from durable._stores.memory import MemoryStore

pytestmark = pytest.mark.integration

PARTITIONS = 16
BACKLOG = 300  # noisy's hints, half on each of its two workflows' streams


@pytest.fixture
def redis_url(any_redis_url: str) -> str:
    return any_redis_url


@durable.workflow(name="RedisFairOne")
async def one(ctx: durable.Context) -> None:
    await ctx.wait_for("never")


@durable.workflow(name="RedisFairTwo")
async def two(ctx: durable.Context) -> None:
    await ctx.wait_for("never")


SPEC = ClaimSpec("fair-worker", frozenset({"RedisFairOne", "RedisFairTwo"}), frozenset(), 60.0)


def tenants() -> tuple[str, str]:
    """A noisy and a quiet tenant whose hints land in different partitions."""
    noisy = "fair-noisy"
    quiet = next(f"fair-quiet-{i}" for i in range(100) if _keys.partition(
        f"fair-quiet-{i}", PARTITIONS) != _keys.partition(noisy, PARTITIONS))
    return noisy, quiet


@pytest.fixture
async def client(redis_url: str, redis_prefix: str) -> AsyncIterator[Client]:
    store = MemoryStore()
    dispatcher = RedisDispatcher(store, redis_url, prefix=redis_prefix, partitions=PARTITIONS)
    made = Client(store, dispatcher=dispatcher, tenants="*")
    yield made
    await made.close()


def claimed(claims: list[Any]) -> list[str]:
    return [claim.task.tenant for claim in claims]


async def test_a_quiet_tenants_task_is_claimed_in_the_next_round_despite_a_backlog(
        client: Client) -> None:
    noisy, quiet = tenants()
    for i in range(BACKLOG // 2):
        await client.start(one, id=f"n1-{i}", tenant=noisy)
        await client.start(two, id=f"n2-{i}", tenant=noisy)
    first = await client.dispatcher.receive(SPEC, limit=10, timeout=0)
    # Ten of noisy's; the worker read ten hints of each of its two streams: ten wait in its
    # backlog, ahead of anything published from now on.
    assert claimed(first) == [noisy] * 10
    await client.start(one, id="q", tenant=quiet)
    second = await client.dispatcher.receive(SPEC, limit=10, timeout=0)
    assert sorted(claimed(second)) == sorted([quiet] + [noisy] * 9)
    assert [c.task.workflow_id for c in second if c.task.tenant == quiet] == ["q"]
    third = await client.dispatcher.receive(SPEC, limit=10, timeout=0)
    assert claimed(third) == [noisy] * 10  # noisy's backlog goes on, in order
    ids = [c.task.workflow_id for c in first + second + third if c.task.tenant == noisy]
    assert len(set(ids)) == len(ids) == 29


async def test_tenants_with_backlogs_take_turns(client: Client) -> None:
    noisy, other = tenants()
    for i in range(40):
        await client.start(one, id=f"a-{i}", tenant=noisy)
        await client.start(one, id=f"b-{i}", tenant=other)
    rounds = [claimed(await client.dispatcher.receive(SPEC, limit=4, timeout=0))
              for _ in range(5)]
    for turn in rounds:  # each call serves both, two each
        assert sorted(turn) == sorted([noisy, noisy, other, other])


async def test_hints_routed_to_a_caching_worker_are_fair_across_tenants_too(
        client: Client) -> None:
    noisy, quiet = tenants()
    assert await client.dispatcher.receive(SPEC, limit=1, timeout=0) == []  # now alive
    for i in range(BACKLOG // 2):
        await client.dispatcher.stick(SPEC.owner, noisy, f"s-{i}", keep=True)
        await client.start(one, id=f"s-{i}", tenant=noisy)  # to the worker's sticky streams
        await client.start(two, id=f"p-{i}", tenant=noisy)  # to noisy's partition
    first = await client.dispatcher.receive(SPEC, limit=10, timeout=0)
    assert claimed(first) == [noisy] * 10
    await client.dispatcher.stick(SPEC.owner, quiet, "q", keep=True)
    await client.start(one, id="q", tenant=quiet)
    second = await client.dispatcher.receive(SPEC, limit=10, timeout=0)
    assert sorted(claimed(second)) == sorted([quiet] + [noisy] * 9)
