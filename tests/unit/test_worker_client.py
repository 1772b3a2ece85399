"""Worker and client end to end on the memory store: retries, keys, starts, bad input, holds."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

import pytest

import durable
from durable._history import ActionCompleted, TaskCompleted, WorkflowStarted
from durable.errors import (
    ActionFailedError, PayloadError, UnknownWorkflowError, ValidationError,
    WorkflowCancelledError, WorkflowClosedError, WorkflowFailedError, WorkflowNotFoundError,
)

FAST = durable.Retry(attempts=3, initial=0.01, backoff=1.0)
calls: list[tuple[str, int, str]] = []


@durable.action(retry=FAST)
async def flaky(n: int) -> int:
    info = durable.action_info()
    calls.append(("flaky", info.attempt, info.idempotency_key))
    if info.attempt < 3:
        raise ConnectionError(f"attempt {info.attempt}")
    return n * 2


@durable.action(retry=FAST)
def always_fails() -> None:
    info = durable.action_info()
    calls.append(("always_fails", info.attempt, info.idempotency_key))
    raise ConnectionError("down")


@durable.action(retry=durable.Retry(attempts=5, initial=0.01, non_retryable=(KeyError,)))
async def not_found() -> None:
    calls.append(("not_found", durable.action_info().attempt, ""))
    raise KeyError("missing")


@durable.action(timeout=0.05, retry=durable.Retry(attempts=2, initial=0.01))
async def too_slow() -> None:
    await asyncio.sleep(10)


@dataclasses.dataclass
class Order:
    sku: str
    qty: int
    at: datetime


@durable.action
def price(order: Order) -> float:
    return order.qty * 2.5


@durable.workflow
async def retrying(ctx: durable.Context, n: int) -> int:
    return await ctx.run(flaky, n)


@durable.workflow
async def failing(ctx: durable.Context) -> str:
    try:
        await ctx.run(always_fails)
    except ActionFailedError as exc:
        return f"{exc.error_type} x{exc.attempts}"
    return "unreachable"


@durable.workflow
async def typed(ctx: durable.Context, order: Order) -> float:
    return await ctx.run(price, order) + await ctx.actions.price(order=order)


@durable.workflow
async def waiter(ctx: durable.Context) -> Any:
    event = await ctx.wait_for("go")
    return event.payload


@durable.workflow
async def nr(ctx: durable.Context) -> list[str]:
    out = []
    for action in (not_found, too_slow):
        try:
            await ctx.run(action)
        except ActionFailedError as exc:
            out.append(f"{exc.error_type}/{exc.attempts}")
    return out


@durable.workflow
async def bad_args(ctx: durable.Context) -> str:
    try:
        await ctx.run(flaky, "x")  # type: ignore[arg-type]
    except ValidationError as exc:
        return f"rejected {exc.parameter}"
    return "accepted"


@durable.workflow
async def boom(ctx: durable.Context) -> None:
    raise RuntimeError("kaput")


ACTIONS = [flaky, always_fails, not_found, too_slow, price]
WORKFLOWS = [retrying, failing, typed, waiter, nr, bad_args, boom]


@pytest.fixture
async def client() -> AsyncIterator[durable.Client]:
    calls.clear()
    async with durable.connect("memory://", tenants=["default", "other"]) as client:
        yield client


@pytest.fixture
async def worker(client: durable.Client) -> AsyncIterator[durable.Worker]:
    async with durable.Worker(client, WORKFLOWS, ACTIONS, poll_interval=0.01) as worker:
        yield worker


async def test_retries_reuse_one_idempotency_key_and_record_one_result(client, worker) -> None:
    handle = await client.start(retrying, 21, id="r1")
    assert await handle.result(timeout=5) == 42
    assert [c[1] for c in calls] == [1, 2, 3]
    assert len({c[2] for c in calls}) == 1
    completions = [e for e in await handle.history() if isinstance(e, ActionCompleted)]
    assert len(completions) == 1 and completions[0].attempt == 3


async def test_final_failure_surfaces_in_the_workflow(client, worker) -> None:
    handle = await client.start(failing, id="f1")
    assert await handle.result(timeout=5) == "ConnectionError x3"


async def test_non_retryable_errors_and_timeouts(client, worker) -> None:
    handle = await client.start(nr, id="nr")
    assert await handle.result(timeout=5) == ["KeyError/1", "TimeoutError/2"]


async def test_typed_arguments_round_trip_through_history(client, worker) -> None:
    order = Order("sku-1", 4, datetime(2026, 1, 1, tzinfo=timezone.utc))
    handle = await client.start(typed, order, id="t1")
    assert await handle.result(timeout=5) == 20.0
    started = (await handle.history())[0]
    assert isinstance(started, WorkflowStarted) and started.args[0]["sku"] == "sku-1"


async def test_second_start_with_same_id_returns_the_existing_execution(client, worker) -> None:
    first = await client.start(waiter, id="same")
    second = await client.start(waiter, id="same")
    await first.send("go", 1)
    assert await second.result(timeout=5) == 1
    assert len(await client.list()) == 1
    other_tenant = await client.start(waiter, id="same", tenant="other")
    assert (await other_tenant.describe()).status == "running"


async def test_events_are_deduplicated_by_idempotency_key(client) -> None:
    handle = await client.start(waiter, id="dedup")
    await handle.send("go", 1, idempotency_key="k")
    await handle.send("go", 2, idempotency_key="k")
    events = [e for e in await handle.history() if type(e).__name__ == "EventReceived"]
    assert [e.payload for e in events] == [1]


async def test_bad_input_is_a_typed_error_and_writes_nothing(client) -> None:
    with pytest.raises(ValidationError, match="'n'"):
        await client.start(retrying, "not an int", id="bad")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="missing"):
        await client.start(retrying, id="bad")  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="positional"):
        await client.start(retrying, 1, 2, id="bad")  # type: ignore[call-arg]
    with pytest.raises(UnknownWorkflowError, match="NoSuchFlow"):
        await client.start("NoSuchFlow", id="bad")
    with pytest.raises(PayloadError, match="cannot encode"):
        await client.start(waiter.__durable_workflow__.name, id="bad")  # fine: no args
        await client.get_handle("bad").send("go", object())
    with pytest.raises(PayloadError, match="exceeds the limit"):
        await client.start(typed, Order("x" * (3 << 20), 1, datetime.now(timezone.utc)), id="big")
    assert [r.workflow_id for r in await client.list()] == ["bad"]
    assert len(await client.get_handle("bad").history()) == 1
    with pytest.raises(WorkflowNotFoundError):
        await client.get_handle("nope").send("go")


async def test_bad_action_arguments_raise_in_the_workflow(client, worker) -> None:
    handle = await client.start(bad_args, id="ba")
    assert await handle.result(timeout=5) == "rejected n"
    assert not any(type(e).__name__ == "ActionScheduled" for e in await handle.history())


async def test_failed_and_cancelled_results_raise(client, worker) -> None:
    with pytest.raises(WorkflowFailedError, match="kaput") as info:
        await (await client.start(boom, id="boom")).result(timeout=5)
    assert info.value.error_type == "RuntimeError"

    handle = await client.start(waiter, id="c1")
    await handle.cancel()
    with pytest.raises(WorkflowCancelledError):
        await handle.result(timeout=5)
    with pytest.raises(WorkflowClosedError):
        await handle.send("go", 1)

    done = await client.start(waiter, id="done")
    await done.send("go", 1, idempotency_key="once")
    assert await done.result(timeout=5) == 1
    await done.send("go", 1, idempotency_key="once")  # a retried send: delivered before, no error
    with pytest.raises(WorkflowClosedError):
        await done.send("go", 1, idempotency_key="another")


async def test_describe_shows_state_data_and_pending_work(client) -> None:
    @durable.workflow(name="pending")
    async def pending(ctx: durable.Context) -> None:
        ctx.set_state("waiting")
        ctx.data["k"] = [1, 2]
        await asyncio.gather(ctx.run(flaky, 1), ctx.sleep(3600))

    worker = durable.Worker(client, [pending], [], poll_interval=0.01)
    handle = await client.start(pending, id="p")
    await worker.run_until_idle()
    description = await handle.describe()
    assert (description.status, description.state, description.data) == ("running", "waiting", {"k": [1, 2]})
    assert [a.name for a in description.pending_actions] == ["flaky"]
    assert [t.cmd for t in description.pending_timers] == [3]


async def test_non_determinism_holds_the_execution_until_fixed_code_is_deployed(client) -> None:
    version = {"v": "old"}

    @durable.workflow(name="evolving")
    async def evolving(ctx: durable.Context) -> str:
        if version["v"] == "broken":
            await ctx.run(not_found)
        else:
            await ctx.run(flaky, 1)
        await ctx.wait_for("go")
        return version["v"]

    def new_worker() -> durable.Worker:
        return durable.Worker(client, [evolving], ACTIONS, poll_interval=0.01, max_cached=0)

    handle = await client.start(evolving, id="ev")
    calls.clear()
    async with new_worker():
        while not any(isinstance(e, TaskCompleted) for e in (await handle.history())[3:]):
            await asyncio.sleep(0.01)
    length = len(await handle.history())
    version["v"] = "broken"
    await handle.send("go")
    await new_worker().run_until_idle()
    description = await handle.describe()
    assert description.status == "running"
    assert "diverged" in description.task_error and "not_found" in description.task_error
    assert len(await handle.history()) == length + 1  # only the event: nothing divergent written
    version["v"] = "fixed"
    async with new_worker():
        assert await handle.result(timeout=10) == "fixed"


async def test_sticky_cache_and_full_replay_write_identical_histories(client) -> None:
    @durable.workflow(name="many_steps")
    async def many_steps(ctx: durable.Context, n: int) -> int:
        total = 0
        for i in range(n):
            total += await ctx.run(price, Order("s", i, ctx.now()))
            if i % 3 == 0:
                await ctx.sleep(0.001)
        return int(total)

    shapes = []
    for cached in (0, 100):
        handle = await client.start(many_steps, 10, id=f"ms-{cached}")
        async with durable.Worker(client, [many_steps], [price], poll_interval=0.01,
                                  max_cached=cached):
            assert await handle.result(timeout=10) == 112
        shapes.append([(type(e).__name__, getattr(e, "cmd", None)) for e in await handle.history()])
    assert shapes[0] == shapes[1]


async def test_graceful_shutdown_lets_in_flight_actions_finish(client) -> None:
    started = asyncio.Event()

    @durable.action(name="slowish")
    async def slowish() -> str:
        started.set()
        await asyncio.sleep(0.2)
        return "finished"

    @durable.workflow(name="uses_slowish")
    async def uses_slowish(ctx: durable.Context) -> str:
        return await ctx.run(slowish)

    handle = await client.start(uses_slowish, id="g")
    worker = durable.Worker(client, [uses_slowish], [slowish], poll_interval=0.01)
    running = asyncio.create_task(worker.run())
    await started.wait()
    worker.shutdown()
    await running
    completions = [e for e in await handle.history() if isinstance(e, ActionCompleted)]
    assert [c.result for c in completions] == ["finished"]


async def test_an_action_whose_workers_keep_dying_fails_once_attempts_run_out(client) -> None:
    @durable.action(name="crashes_its_worker", retry=durable.Retry(attempts=2))
    async def crashes_its_worker() -> None:
        raise AssertionError("never runs: the ghosts below took both attempts")

    @durable.workflow(name="lost")
    async def lost(ctx: durable.Context) -> str:
        try:
            await ctx.run(crashes_its_worker)
        except ActionFailedError as exc:
            return f"{exc.error_type}: {exc.error_message}"
        return "ran"

    handle = await client.start(lost, id="lost")
    await durable.Worker(client, [lost], []).run_until_idle()
    import time

    for ghost in ("ghost-1", "ghost-2"):  # two workers claim it and die (leases expire)
        assert await client.store.claim_action_tasks(["crashes_its_worker"], ghost, lease=0.001,
                                                     now=time.time(), limit=1)
        await asyncio.sleep(0.002)
    async with durable.Worker(client, [lost], [crashes_its_worker], poll_interval=0.01):
        result = await handle.result(timeout=5)
    assert result.startswith("ActionLostError: action 'crashes_its_worker': the worker running "
                             "attempt 2 stopped")


async def test_a_memory_store_result_waits_without_reading_for_a_handle_it_started() -> None:
    from durable._stores.memory import MemoryStore

    @durable.workflow(name="memory_noticed")
    async def memory_noticed(ctx: durable.Context, n: int) -> int:
        return n + 1

    class Counting(MemoryStore):
        reads = 0

        async def get_execution(self, tenant: str, workflow_id: str) -> Any:
            Counting.reads += 1
            return await super().get_execution(tenant, workflow_id)

    client = durable.Client(Counting(), poll_interval=30.0)
    handle = await client.start(memory_noticed, 1, id="m")
    async with durable.Worker(client, [memory_noticed], poll_interval=0.01):
        assert await handle.result(timeout=5) == 2
    assert Counting.reads == 0
    # a handle that did not start the execution reads first
    assert await client.get_handle("m").result(timeout=5) == 2 and Counting.reads == 1


@durable.action(timeout=1.0)  # short: runs inline
async def quick_add(n: int) -> int:
    return n + 1


@durable.workflow(name="quick_step")
async def quick_step(ctx: durable.Context, n: int) -> int:
    return await ctx.run(quick_add, n)


async def _run_until_idle_completes_all(concurrency: int) -> list[str]:
    client = durable.Client(durable._stores.memory.MemoryStore())  # type: ignore[attr-defined]
    handles = [await client.start(quick_step, i, id=f"q{i}") for i in range(250)]
    await durable.Worker(client, [quick_step], [quick_add],
                         concurrency=concurrency).run_until_idle()
    return [(await h.describe()).status for h in handles]


@pytest.mark.parametrize("concurrency", [1, 3, 100])
async def test_run_until_idle_runs_everything_due_whatever_the_concurrency(
        concurrency: int) -> None:
    assert await _run_until_idle_completes_all(concurrency) == ["completed"] * 250


def test_run_until_idle_runs_everything_due_on_uvloop() -> None:
    # uvloop runs a batch of tasks to their end while the worker waits for a free slot,
    # which once made run_until_idle return with work left
    uvloop = pytest.importorskip("uvloop")
    assert uvloop.run(_run_until_idle_completes_all(100)) == ["completed"] * 250


class ClaimCounting(durable._stores.memory.MemoryStore):  # type: ignore[name-defined,misc]
    """The memory store, counting the workflow tasks claimed (rather than started eagerly)."""

    def __init__(self) -> None:
        super().__init__()
        self.claimed: list[str] = []

    async def claim_workflow_tasks(self, *args: Any, **kwargs: Any) -> Any:
        tasks = await super().claim_workflow_tasks(*args, **kwargs)
        self.claimed += [t.workflow_id for t in tasks]
        return tasks


async def test_a_start_hands_its_first_task_to_a_running_worker_of_the_client() -> None:
    store = ClaimCounting()
    client = durable.Client(store, poll_interval=30.0)
    async with durable.Worker(client, [quick_step], [quick_add], poll_interval=30.0):
        await asyncio.sleep(0.01)  # the worker runs, and will not look for work for 30 s
        handle = await client.start(quick_step, 1, id="eager")
        assert await handle.result(timeout=5) == 2
    assert store.claimed == []  # no claim: the creation leased the task to the worker
    before = [e for e in await handle.history() if type(e).__name__ == "TaskCompleted"]
    assert len(before) == 2


async def test_a_worker_that_cannot_take_an_eager_start_gives_the_task_back() -> None:
    store = ClaimCounting()
    client = durable.Client(store)
    worker = durable.Worker(client, [quick_step], [quick_add], poll_interval=0.01)
    async with worker:
        await asyncio.sleep(0.01)
        def stopping(task: Any) -> bool:  # stopping just then: the slot goes back
            worker.unreserve(1)
            return False

        worker.run_eager = stopping  # type: ignore[method-assign]
        handle = await client.start(quick_step, 1, id="given-back")
        assert await handle.result(timeout=5) == 2
    assert store.claimed == ["given-back"]  # released, then claimed as any task is


@durable.workflow(name="ResultAnnotationChanged")
async def returns_text(ctx: durable.Context) -> str:
    return "seven"


async def test_a_result_that_no_longer_fits_the_annotation_is_a_typed_error() -> None:
    async with durable.connect("memory://") as client:
        async with durable.Worker(client, [returns_text], []):
            assert await (await client.start(returns_text, id="changed")).result(5) == "seven"

        @durable.workflow(name="ResultAnnotationChanged")  # the code changed since
        async def returns_number(ctx: durable.Context) -> int:
            return 7

        with pytest.raises(ValidationError, match="recorded result of ResultAnnotationChanged"
                           r".*Expected `int`, got `str`"):
            await client.get_handle("changed").result(timeout=5)
