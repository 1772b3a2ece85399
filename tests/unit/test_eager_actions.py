"""Eager action dispatch: a workflow task's new actions that its worker hosts start there at
once, leased by the commit (no hint, no claim), within the worker's concurrency."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

import durable
from durable._stores import TaskRef
from durable.errors import ArgumentTypeError

RUNNING: list[str] = []
PEAK: list[int] = [0]


@durable.action(name="EagerStep")
async def step(n: int) -> int:
    RUNNING.append("x")
    PEAK[0] = max(PEAK[0], len(RUNNING))
    await asyncio.sleep(0.01)
    RUNNING.pop()
    return n + 1


@durable.workflow(name="EagerFlow")
async def flow(ctx: durable.Context, n: int) -> int:
    for _ in range(3):
        n = await ctx.run(step, n)
    return n


@durable.workflow(name="EagerFanOut")
async def fan_out(ctx: durable.Context, width: int) -> int:
    return sum(await asyncio.gather(*(ctx.run(step, i) for i in range(width))))


def _published(client: durable.Client) -> list[TaskRef]:
    seen: list[TaskRef] = []
    publish = client.publish

    async def recording(refs: list[TaskRef], *, sticky: bool = True) -> None:
        seen.extend(refs)
        await publish(refs, sticky=sticky)

    client.publish = recording  # type: ignore[method-assign]
    return seen


@pytest.mark.parametrize("eager", [True, False])
async def test_hosted_actions_start_without_a_hint_when_eager(eager: bool, tmp_path: Any) -> None:
    async with durable.connect(f"sqlite:///{tmp_path}/e.db") as client:
        published = _published(client)
        async with durable.Worker(client, [flow], [step], eager_actions=eager):
            handle = await client.start(flow, 1)
            assert await handle.result(timeout=10) == 4
        action_hints = [r for r in published if r.kind == "a"]
        assert len(action_hints) == (0 if eager else 3)
        if eager:  # each outcome ran the cached instance at once: no hint but the start's
            assert [r.name for r in published] in ([], ["EagerFlow"])


async def test_eager_actions_stay_within_the_worker_concurrency(tmp_path: Any) -> None:
    PEAK[0] = 0
    async with durable.connect(f"sqlite:///{tmp_path}/e.db") as client:
        published = _published(client)
        async with durable.Worker(client, [fan_out], [step], concurrency=4):
            handle = await client.start(fan_out, 10)
            assert await handle.result(timeout=10) == sum(range(1, 11))
        assert PEAK[0] <= 4  # never more at once than the worker runs (6 before claims left room)
        assert 0 < len([r for r in published if r.kind == "a"]) < 10  # the rest: claimed


async def test_eager_actions_is_a_bool() -> None:
    async with durable.connect("memory://") as client:
        with pytest.raises(ArgumentTypeError, match="eager_actions"):
            durable.Worker(client, [flow], [step], eager_actions="yes")  # type: ignore[arg-type]


BLOCKED = threading.Event()  # set from the test's loop; actions may run on another


@durable.action(name="EagerBlocked")
async def blocked(n: int) -> int:
    while not BLOCKED.is_set():
        await asyncio.sleep(0.01)
    return n


@durable.workflow(name="EagerHog")
async def hog(ctx: durable.Context, n: int) -> int:
    return await ctx.run(blocked, n)


async def test_a_tenant_alone_runs_its_steps_on_a_worker_another_tenant_fills(
        tmp_path: Any) -> None:
    # Tenant "noisy" holds all 20 slots with actions that do not return; tenant "quiet"'s
    # workflow still runs: its action starts in a slot kept for tenants with nothing else
    # running, and its outcome runs the next workflow task in the action's slot (neither
    # waits in the queue for a slot that noisy never frees).
    BLOCKED.clear()
    async with durable.connect(f"sqlite:///{tmp_path}/e.db", tenants="*") as client:
        published = _published(client)
        async with durable.Worker(client, [flow, hog], [step, blocked], concurrency=20) as w:
            for i in range(20):
                await client.start(hog, i, id=f"hog{i}", tenant="noisy")
            while w.in_flight < 20:
                await asyncio.sleep(0.01)
            try:
                handle = await client.start(flow, 1, tenant="quiet")
                assert await handle.result(timeout=10) == 4
            finally:
                BLOCKED.set()
        assert not [r for r in published if r.tenant == "quiet" and r.kind == "a"]


async def test_a_worker_left_at_once_stops(tmp_path: Any) -> None:
    # shutdown() before the worker's task first ran used to be undone by it: exit hung
    async with durable.connect(f"sqlite:///{tmp_path}/e.db") as client:
        async with asyncio.timeout(10):
            async with durable.Worker(client, [flow], [step]):
                pass


async def test_concurrent_starts_stay_within_the_worker_concurrency(tmp_path: Any) -> None:
    # Each eager start takes its slot when it is chosen, not once the execution exists: 50
    # starts at once used to find the same free slots and all run (in_flight 50 of 10).
    BLOCKED.clear()
    async with durable.connect(f"sqlite:///{tmp_path}/e.db") as client:
        async with durable.Worker(client, [hog], [blocked], concurrency=10) as worker:
            try:
                handles = await asyncio.gather(*(client.start(hog, i) for i in range(50)))
                assert worker.in_flight <= 10 + 1  # the one slot kept for another tenant
            finally:
                BLOCKED.set()
            assert [await h.result(timeout=10) for h in handles] == list(range(50))


class _Recording:
    """Counts the outcomes recorded alone (``complete_action_task``) rather than with the
    workflow task they make due."""

    def __init__(self, client: durable.Client) -> None:
        self.alone = 0
        store = client.store
        complete = store.complete_action_task

        async def counted(*args: Any, **kwargs: Any) -> bool:
            self.alone += 1
            return await complete(*args, **kwargs)

        store.complete_action_task = counted  # type: ignore[method-assign]


@pytest.mark.parametrize("url", ["memory://", "sqlite:///{tmp}/s.db"])
async def test_an_outcome_commits_with_the_workflow_task_it_makes_due(url: str,
                                                                       tmp_path: Any) -> None:
    async with durable.connect(url.format(tmp=tmp_path)) as client:
        recording = _Recording(client)
        async with durable.Worker(client, [flow], [step]):
            handle = await client.start(flow, 1)
            assert await handle.result(timeout=10) == 4
        assert recording.alone == 0  # each outcome settled by its next workflow task's commit
        kinds = [type(e).__name__ for e in await handle.history()]
        assert kinds.count("ActionCompleted") == 3 and kinds[-1] == "WorkflowCompleted"


GATE: list[asyncio.Event] = []


@durable.action(name="EagerGated")
async def gated() -> str:
    await GATE[0].wait()
    return "opened"


@durable.workflow(name="EagerGatedFlow")
async def gated_flow(ctx: durable.Context) -> list[Any]:
    first = await ctx.run(gated)
    return [first, (await ctx.wait_for("go")).payload]


async def test_an_input_that_arrives_while_the_action_runs_is_not_passed_over(
        tmp_path: Any) -> None:
    """An event recorded while the action ran needs its workflow task: the outcome is then
    recorded alone, and the task runs both."""
    GATE[:] = [asyncio.Event()]
    async with durable.connect(f"sqlite:///{tmp_path}/g.db") as client:
        recording = _Recording(client)
        async with durable.Worker(client, [gated_flow], [gated], metrics_port=0) as worker:
            handle = await client.start(gated_flow)
            while not any(type(e).__name__ == "ActionScheduled" for e in await handle.history()):
                await asyncio.sleep(0.01)
            await handle.send("go", 7)
            GATE[0].set()
            assert await handle.result(timeout=10) == ["opened", 7]
        assert recording.alone == 1
        metrics = worker.telemetry.metrics
        assert metrics is not None  # the refused settle is its own outcome, not a failure
        assert metrics.registry.get_sample_value(
            "durable_workflow_tasks_total", {"workflow": "EagerGatedFlow", "outcome": "refused"}) == 1
        assert metrics.registry.get_sample_value(
            "durable_workflow_tasks_total",
            {"workflow": "EagerGatedFlow", "outcome": "released"}) is None


@durable.workflow(name="EagerOneStep")
async def one_step(ctx: durable.Context, n: int) -> int:
    return await ctx.run(step, n)


async def test_a_full_worker_hands_each_workflow_tasks_slot_to_its_action(tmp_path: Any) -> None:
    # A worker that comes up to a backlog (as after another worker's crash) fills its slots
    # with workflow tasks; each task's commit passes its own slot on to its action instead of
    # sending the action to the queue for want of a free slot (12 or 13 of 16 went to the queue).
    async with durable.connect(f"sqlite:///{tmp_path}/e.db") as client:
        handles = [await client.start(one_step, i) for i in range(16)]  # no worker yet
        published = _published(client)
        async with durable.Worker(client, [one_step], [step], concurrency=4):
            assert [await h.result(timeout=10) for h in handles] == list(range(1, 17))
        assert not [r for r in published if r.kind == "a"]


@durable.workflow(name="EagerNoActions")
async def no_actions(ctx: durable.Context, n: int) -> int:
    await asyncio.sleep(0.01)  # a durable timer: a second workflow task
    return n


@pytest.mark.parametrize("url", ["memory://", "sqlite:///{tmp}/h.db"])
async def test_workflow_tasks_run_while_long_actions_hold_every_slot(url: str,
                                                                     tmp_path: Any) -> None:
    # Two actions that do not return hold both of a worker's slots; other workflows still
    # start, fire their timers and end, in the slot kept beyond concurrency for workflow
    # tasks (they waited for an action to end before).
    BLOCKED.clear()
    async with durable.connect(url.format(tmp=tmp_path)) as client:
        async with durable.Worker(client, [hog, no_actions], [blocked], concurrency=2) as w:
            hogs = [await client.start(hog, i) for i in range(2)]
            try:
                while w.in_flight < 2:
                    await asyncio.sleep(0.01)
                handles = [await client.start(no_actions, i) for i in range(5)]
                assert [await h.result(timeout=10) for h in handles] == list(range(5))
                assert not BLOCKED.is_set() and w.in_flight <= 2 + 1
            finally:
                BLOCKED.set()
            assert [await h.result(timeout=10) for h in hogs] == [0, 1]
