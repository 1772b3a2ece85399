"""Queries and updates end to end, on every store: client, worker and the live instance.

Each test runs a real worker on the ``store_url`` store; ``other_client`` (a second handle on
the same data, as another process would have) shows that requests cross store instances.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from _support import eventually

import durable
from durable._history import Event, UpdateAccepted, UpdateCompleted
from durable.errors import (
    ArgumentTypeError, NonDeterminismError, PayloadError, QueryFailedError, RequestTimeoutError,
    UnknownQueryError, UnknownUpdateError, UnknownWorkflowError, UpdateFailedError,
    UpdateRejectedError, WorkflowClosedError,
)

ran: Counter[str] = Counter()  # action bodies run, by workflow id


@dataclasses.dataclass
class Cart:
    items: list[str]
    total: int


@durable.action(name="qu_price")
def price(item: str) -> int:
    ran[durable.action_info().workflow_id] += 1
    return len(item)


@durable.workflow(name="QUCart")
async def cart(ctx: durable.Context, owner: str) -> Cart:
    state = Cart([], 0)
    ctx.set_state("open")

    @ctx.on_query("cart")
    def get_cart() -> Cart:
        return state

    @ctx.on_query("has")
    def has(item: str) -> bool:
        return item in state.items

    ctx.on_query("broken", lambda: 1 // 0)
    ctx.on_query("meddling", lambda: ctx.set_state("changed by a query"))
    ctx.on_query("lucky", lambda: ctx.random())

    def check(item: str) -> None:
        if not item:
            raise ValueError("an item needs a name")
        if item in state.items:
            raise KeyError(f"{item} is in the cart already")

    @ctx.on_update("add", validator=check)
    async def add(item: str) -> int:
        cost = await ctx.run(price, item)
        state.items.append(item)
        state.total += cost
        ctx.data["total"] = state.total
        return state.total

    @ctx.on_update("fail")
    def fail(reason: str) -> None:
        raise RuntimeError(reason)

    @ctx.on_update("hang")
    async def hang() -> None:
        await ctx.wait_for("never")

    await ctx.wait_for("checkout")
    ctx.set_state("paid")
    pick = await ctx.run(price, f"lucky-{ctx.random():.12f}")  # the random stream is intact
    return dataclasses.replace(state, total=state.total + pick * 0)


@pytest.fixture
async def client(store_url: str) -> AsyncIterator[durable.Client]:
    ran.clear()
    async with durable.connect(store_url) as client:
        client.poll_interval = 0.02
        yield client


@pytest.fixture
async def other_client(client: durable.Client, store_url: str) -> AsyncIterator[durable.Client]:
    if store_url.startswith("memory:"):
        yield client
        return
    async with durable.connect(store_url) as other:
        other.poll_interval = 0.02
        yield other


def worker(client: durable.Client) -> durable.Worker:
    return durable.Worker(client, [cart], [price], poll_interval=0.02)


def kinds(events: list[Event]) -> list[str]:
    return [type(e).__name__ for e in events]


async def started(client: durable.Client, wf: str = "c1") -> durable.WorkflowHandle[Cart]:
    return await client.start(cart, "ann", id=wf)


# ---- queries --------------------------------------------------------------------------------


async def test_a_query_reads_live_state_and_records_nothing(client: durable.Client,
                                                            other_client: durable.Client) -> None:
    async with worker(client):
        handle = await started(client)
        assert await handle.query("cart", result_type=Cart) == Cart([], 0)
        assert await handle.update("add", "tea") == 3
        before = await handle.history()
        theirs = other_client.get_handle("c1")
        assert await theirs.query("cart") == {"items": ["tea"], "total": 3}
        assert await theirs.query("has", "tea") is True
        assert await handle.query("has", "cake") is False
        assert await handle.history() == before


async def test_a_query_of_an_ended_execution_answers_from_its_final_state(
        client: durable.Client) -> None:
    async with worker(client):
        handle = await started(client)
        await handle.update("add", "tea")
        await handle.send("checkout")
        assert (await handle.result(timeout=10)).items == ["tea"]
        length = len(await handle.history())
        assert await handle.query("cart", result_type=Cart) == Cart(["tea"], 3)
        assert len(await handle.history()) == length


async def test_unknown_and_failing_queries_are_typed_errors(client: durable.Client) -> None:
    async with worker(client):
        handle = await started(client)
        with pytest.raises(RequestTimeoutError, match="registered a handler"):
            await handle.query("price", timeout=0.3)  # kept: the run may register it still
        with pytest.raises(QueryFailedError) as failed:
            await handle.query("broken")
        assert failed.value.error_type == "ZeroDivisionError"
        with pytest.raises(QueryFailedError, match="ValidationError"):
            await handle.query("has", 42)  # the handler takes a str
        with pytest.raises(QueryFailedError, match="positional"):
            await handle.query("has", "a", "b")
        with pytest.raises(QueryFailedError) as meddling:
            await handle.query("meddling")
        assert meddling.value.error_type == "IllegalWorkflowOperationError"
        assert (await handle.describe()).state == "open"  # nothing changed


async def test_queries_leave_the_random_stream_and_the_history_as_they_were(
        client: durable.Client) -> None:
    async with worker(client):
        handle = await started(client)
        for _ in range(3):
            await handle.query("lucky")
        await handle.send("checkout")
        await handle.result(timeout=10)
        history = await handle.history()
    # strict replay fails on a changed argument: the action's one came from ctx.random()
    result = durable.Replayer([cart], [price], strict=True).replay(history)
    assert result.done


async def test_a_query_without_a_worker_times_out_and_leaves_nothing(
        client: durable.Client) -> None:
    handle = await client.start(cart, "ann", id="c1")
    with pytest.raises(RequestTimeoutError, match="no answer to query 'cart'") as timed_out:
        await handle.query("cart", timeout=0.2)
    err = timed_out.value
    assert (err.kind, err.name, err.timeout, err.accepted) == ("query", "cart", 0.2, False)
    assert await client.store.get_request("default", "c1", err.request_id) is None
    assert await client.store.pending_requests("default", "c1") == []


# ---- updates --------------------------------------------------------------------------------


async def test_an_update_is_recorded_and_its_reply_returned(client: durable.Client) -> None:
    async with worker(client):
        handle = await started(client)
        assert await handle.update("add", "tea") == 3
        assert await handle.update("add", "cake", idempotency_key="k-cake") == 7
        history = await handle.history()
        accepted = [e for e in history if isinstance(e, UpdateAccepted)]
        completed = [e for e in history if isinstance(e, UpdateCompleted)]
        assert [(e.name, e.args) for e in accepted] == [("add", ["tea"]), ("add", ["cake"])]
        assert [e.result for e in completed] == [3, 7] and accepted[1].id == "k-cake"
        assert (await handle.describe()).data == {"total": 7}
        assert ran["c1"] == 2


async def test_a_rejected_update_records_nothing(client: durable.Client) -> None:
    async with worker(client):
        handle = await started(client)
        await handle.update("add", "tea")
        before = await handle.history()
        with pytest.raises(UpdateRejectedError, match="already") as dup:
            await handle.update("add", "tea")
        assert dup.value.error_type == "KeyError"
        with pytest.raises(UpdateRejectedError, match="needs a name"):
            await handle.update("add", "")
        with pytest.raises(UpdateRejectedError, match="ValidationError"):
            await handle.update("add", 3)  # does not fit the handler's signature
        with pytest.raises(RequestTimeoutError, match="registered a handler"):
            await handle.update("remove", "tea", timeout=0.3)  # kept, not recorded
        assert await handle.history() == before
        assert ran["c1"] == 1


async def test_a_rejected_update_is_validated_again_when_retried(client: durable.Client) -> None:
    async with worker(client):
        handle = await started(client)
        with pytest.raises(UpdateRejectedError):
            await handle.update("add", "", idempotency_key="k")
        assert await handle.update("add", "tea", idempotency_key="k") == 3


async def test_an_update_whose_handler_raises_fails_and_the_workflow_goes_on(
        client: durable.Client) -> None:
    async with worker(client):
        handle = await started(client)
        with pytest.raises(UpdateFailedError, match="out of stock") as failed:
            await handle.update("fail", "out of stock")
        assert failed.value.error_type == "RuntimeError"
        [completed] = [e for e in await handle.history() if isinstance(e, UpdateCompleted)]
        assert completed.error is not None and completed.error.message == "out of stock"
        assert await handle.update("add", "tea") == 3
        assert (await handle.describe()).status == "running"


async def test_updates_are_applied_once_per_idempotency_key(client: durable.Client,
                                                            other_client: durable.Client) -> None:
    async with worker(client):
        handle = await started(client)
        theirs = other_client.get_handle("c1")
        results = await asyncio.gather(*(h.update("add", "tea", idempotency_key="once")
                                          for h in (handle, theirs, handle, theirs)))
        assert results == [3, 3, 3, 3]
        assert await handle.update("add", "tea", idempotency_key="once") == 3  # a later retry
        history = await handle.history()
        assert kinds(history).count("UpdateAccepted") == 1
        assert kinds(history).count("UpdateCompleted") == 1
        assert ran["c1"] == 1


async def test_an_update_without_a_worker_times_out_then_applies_once_one_runs(
        client: durable.Client) -> None:
    handle = await client.start(cart, "ann", id="c1")
    with pytest.raises(RequestTimeoutError, match="idempotency_key='k'") as timed_out:
        await handle.update("add", "tea", idempotency_key="k", timeout=0.2)
    assert timed_out.value.kind == "update" and not timed_out.value.accepted
    assert "UpdateAccepted" not in kinds(await handle.history())
    async with worker(client):
        assert await handle.update("add", "tea", idempotency_key="k") == 3
    assert kinds(await handle.history()).count("UpdateAccepted") == 1


async def test_an_update_still_running_when_the_workflow_ends_fails(client: durable.Client) -> None:
    async with worker(client):
        handle = await started(client)
        hanging = asyncio.create_task(handle.update("hang", idempotency_key="h"))
        await eventually(lambda: client.store.get_request("default", "c1", "h"),
                         what="the update request")

        async def accepted() -> bool:
            request = await client.store.get_request("default", "c1", "h")
            return request is not None and request.status == "accepted"

        await eventually(accepted, what="the update to be accepted")
        with pytest.raises(RequestTimeoutError) as still_running:
            await handle.update("hang", idempotency_key="h", timeout=0.1)
        assert still_running.value.accepted
        await handle.send("checkout")
        await handle.result(timeout=10)
        with pytest.raises(UpdateFailedError) as ended:
            await hanging
        assert ended.value.error_type == "WorkflowClosedError"


async def test_an_update_of_an_ended_execution_is_closed(client: durable.Client) -> None:
    async with worker(client):
        handle = await started(client)
        await handle.update("add", "tea", idempotency_key="before")
        await handle.send("checkout")
        await handle.result(timeout=10)
        with pytest.raises(WorkflowClosedError):
            await handle.update("add", "cake")
        assert await handle.update("add", "tea", idempotency_key="before") == 3  # a retry


async def test_bad_requests_are_typed_errors_before_anything_is_sent(
        client: durable.Client) -> None:
    handle = await client.start(cart, "ann", id="c1")
    with pytest.raises(TypeError):
        await handle.query("")
    with pytest.raises(TypeError):
        await handle.update("add", "tea", idempotency_key="")
    with pytest.raises(PayloadError, match="cannot encode"):
        await handle.update("add", object())
    with pytest.raises(PayloadError, match="exceeds the limit"):
        await handle.query("has", "x" * (3 << 20))
    with pytest.raises(durable.errors.WorkflowNotFoundError):
        await client.get_handle("nope").query("cart")
    assert await client.store.pending_requests("default", "c1") == []


# ---- a request that arrives while a workflow task runs ---------------------------------------

gates: dict[str, asyncio.Event] = {}


@durable.action(name="qu_wait_at_gate", inline=True)
async def wait_at_gate() -> str:
    gates["entered"].set()
    await gates["open"].wait()
    return "through"


@durable.workflow(name="QUGated")
async def gated(ctx: durable.Context) -> str:
    passed = await ctx.run(wait_at_gate)
    ctx.on_query("passed", lambda: passed)
    await ctx.wait_for("stop")
    return passed


async def test_a_request_that_arrives_during_a_workflow_task_is_answered_after_it(
        client: durable.Client) -> None:
    gates.update(entered=asyncio.Event(), open=asyncio.Event())
    async with durable.Worker(client, [gated], [wait_at_gate], poll_interval=0.02):
        handle = await client.start(gated, id="g1")
        await asyncio.wait_for(gates["entered"].wait(), 10)  # the first task runs the action
        asking = asyncio.create_task(handle.query("passed", timeout=10))
        await eventually(lambda: client.store.pending_requests("default", "g1"),
                         what="the query to be recorded")
        gates["open"].set()  # the task commits: it started before the query came
        assert await asking == "through"


# ---- replay ---------------------------------------------------------------------------------


async def test_a_history_with_updates_replays_and_a_new_worker_continues_it(
        client: durable.Client) -> None:
    async with worker(client):
        handle = await started(client)
        await handle.update("add", "tea")
        with pytest.raises(UpdateFailedError):
            await handle.update("fail", "nope")
        await handle.update("add", "cake")
    replayed = durable.Replayer([cart], [price], strict=True).replay(await handle.history())
    assert replayed.state == "open" and replayed.data == {"total": 7} and not replayed.done
    async with worker(client):  # a fresh worker rebuilds the instance from history
        assert await handle.query("cart", result_type=Cart) == Cart(["tea", "cake"], 7)
        assert await handle.update("add", "jam") == 10
        await handle.send("checkout")
        assert await handle.result(timeout=10) == Cart(["tea", "cake", "jam"], 10)
    assert ran["c1"] == 4  # three items and the checkout: nothing ran twice


@durable.workflow(name="QUCart")
async def cart_without_updates(ctx: durable.Context, owner: str) -> Cart:
    """``cart`` as it would be after a deployment that dropped its "add" update."""
    ctx.set_state("open")
    ctx.on_query("cart", lambda: Cart([], 0))
    await ctx.wait_for("checkout")
    return Cart([], 0)


durable.workflow(name="QUCart")(cart)  # the registry keeps the real one


async def test_code_that_lost_an_update_handler_is_a_divergence(client: durable.Client) -> None:
    async with worker(client):
        handle = await started(client)
        await handle.update("add", "tea")
    history = await handle.history()
    with pytest.raises(NonDeterminismError, match="(?s)UpdateAccepted.*no update handler 'add'"):
        durable.Replayer([cart_without_updates], [price]).replay(history)
    async with durable.Worker(client, [cart_without_updates], [price], poll_interval=0.02):
        with pytest.raises(QueryFailedError) as held:  # the execution is held; it says why
            await handle.query("cart", timeout=10)
        assert held.value.error_type == "NonDeterminismError"
        with pytest.raises(UpdateRejectedError, match="NonDeterminismError"):
            await handle.update("add", "jam", timeout=10)
    assert kinds(await handle.history()).count("UpdateAccepted") == 1


# ---- continue-as-new ------------------------------------------------------------------------


@durable.workflow(name="QUChapters")
async def chapters(ctx: durable.Context, chapter: int) -> int:
    notes: list[str] = []
    ctx.on_query("chapter", lambda: (chapter, list(notes)))

    @ctx.on_update("note")
    def note(text: str) -> int:
        notes.append(text)
        return len(notes)

    await ctx.wait_for("next")
    if chapter < 2:
        ctx.continue_as_new(chapter + 1)
    return chapter


async def test_requests_follow_an_execution_into_its_next_run(client: durable.Client) -> None:
    async with durable.Worker(client, [chapters], poll_interval=0.02):
        handle = await client.start(chapters, 1, id="book")
        assert await handle.update("note", "one", idempotency_key="n1") == 1
        assert await handle.query("chapter") == [1, ["one"]]
        await handle.send("next")

        async def next_run() -> bool:
            return (await handle.query("chapter"))[0] == 2

        await eventually(next_run, what="the second run")
        assert await handle.update("note", "two") == 1  # the new run's own handlers
        assert await handle.update("note", "one", idempotency_key="n1") == 1  # applied before
        await handle.send("next")
        assert await handle.result(timeout=10) == 2
        assert await handle.query("chapter") == [2, ["two"]]


@durable.workflow(name="QULate")
async def late(ctx: durable.Context) -> str:
    opened = await ctx.wait_for("open")
    assert opened is not None
    count = [0]
    ctx.on_query("count", lambda: count[0])

    def bump(by: int) -> int:
        count[0] += by
        return count[0]

    ctx.on_update("bump", bump)
    await ctx.wait_for("close")
    return "closed"


@durable.workflow(name="QUDeclared")
async def declared(ctx: durable.Context) -> str:
    ctx.set_state("waiting")
    await ctx.wait_for("close")
    return "closed"


@durable.on_query(declared)
def status(ctx: durable.Context, suffix: str = "") -> str:
    return f"{ctx.info.workflow_id}: {ctx.data.get('status', 'new')}{suffix}"


def _not_empty(ctx: durable.Context, value: str) -> None:
    if not value:
        raise ValueError("empty")


@durable.on_update(declared, "set", validator=_not_empty)
def set_status(ctx: durable.Context, value: str) -> str:
    ctx.data["status"] = value
    return value


async def test_requests_before_their_handler_wait_for_it(client: durable.Client) -> None:
    async with durable.Worker(client, [late], [], poll_interval=0.01):
        handle = await client.start(late, id="late")
        query = asyncio.create_task(handle.query("count", timeout=20))
        update = asyncio.create_task(handle.update("bump", 2, timeout=20))
        await asyncio.sleep(0.2)
        assert not query.done() and not update.done()  # no handler yet: kept, not refused
        await handle.send("open")
        assert await update == 2
        assert await query in (0, 2)  # answered once the handler exists
        await handle.send("close")
        assert await handle.result(timeout=20) == "closed"
        with pytest.raises(UnknownQueryError, match="'missing'"):
            await handle.query("missing", timeout=20)  # ended without it: refused


async def test_handlers_declared_on_the_definition_exist_from_the_start(
        client: durable.Client) -> None:
    async with durable.Worker(client, [declared], [], poll_interval=0.01):
        handle = await client.start(declared, id="decl")
        assert await handle.query("status", timeout=20) == "decl: new"
        assert await handle.update("set", "busy", timeout=20) == "busy"
        assert await handle.query("status", "!", timeout=20) == "decl: busy!"
        with pytest.raises(UpdateRejectedError, match="empty"):
            await handle.update("set", "", timeout=20)
        await handle.send("close")
        assert await handle.result(timeout=20) == "closed"


def test_bad_declared_handlers_are_typed_errors() -> None:
    with pytest.raises(ArgumentTypeError, match="async"):
        @durable.on_query(declared, "bad")
        async def bad(ctx: durable.Context) -> int:
            return 1
    with pytest.raises(UnknownWorkflowError):
        durable.on_query("NoSuchWorkflow", "x")


@dataclasses.dataclass
class Tally:
    count: int
    last: str


@durable.workflow(name="QUTyped")
async def typed(ctx: durable.Context) -> None:
    await ctx.wait_for("close")


@durable.on_query(typed)
def tally(ctx: durable.Context) -> Tally:
    return Tally(len(ctx.data), str(ctx.data.get("last", "")))


@durable.on_update(typed)
def note(ctx: durable.Context, text: str) -> Tally:
    ctx.data[f"n{len(ctx.data)}"] = text
    ctx.data["last"] = text
    return Tally(len(ctx.data), text)


async def test_answers_take_the_declared_handlers_return_type(client: durable.Client) -> None:
    async with durable.Worker(client, [typed], [], poll_interval=0.01):
        handle = await client.start(typed, id="typed")
        assert await handle.query("tally", timeout=20) == Tally(0, "")
        assert await handle.update("note", "hi", timeout=20) == Tally(2, "hi")
        started = await handle.start_update("note", "yo", wait_for="completed", timeout=20)
        assert await started.result(timeout=20) == Tally(3, "yo")
        as_given = await handle.query("tally", timeout=20, result_type=dict)
        assert as_given == {"count": 3, "last": "yo"}  # an explicit result_type wins
        untyped = client.get_handle("typed")  # knows no workflow: the answer as it came
        assert await untyped.query("tally", timeout=20) == {"count": 3, "last": "yo"}
        await handle.send("close")
        await handle.result(timeout=20)
