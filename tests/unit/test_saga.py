"""``durable.Saga``: compensations of completed steps, in reverse, shielded, never hiding errors."""

from __future__ import annotations

import asyncio
import pickle
from typing import Any

import pytest

import durable
from durable._history import ActionCompleted, ActionScheduled, CancelRequested
from durable.errors import (
    CompensationError, UnknownActionError, WorkflowCancelledError, WorkflowFailedError,
)
from durable.testing import Environment

from _support import eventually

log: list[str] = []
NO_RETRY = durable.Retry(attempts=1)


@durable.action
async def book(item: str) -> str:
    log.append(f"book {item}")
    return f"{item}-booking"


@durable.action(retry=NO_RETRY)
async def unbook(booking: str) -> None:
    log.append(f"unbook {booking}")
    if booking == "car-booking" and "break car" in log:
        raise ConnectionError("the rental desk is down")


@durable.action(retry=NO_RETRY)
async def pay(amount: int) -> str:
    log.append(f"pay {amount}")
    if amount > 100:
        raise durable.NonRetryable(f"card declined for {amount}")
    return "paid"


@durable.workflow
async def trip(ctx: durable.Context, amount: int) -> str:
    async with durable.Saga(ctx) as saga:
        for item in ("hotel", "car", "flight"):
            booking = await ctx.run(book, item)
            saga.add_compensation(unbook, booking)
        return await ctx.run(pay, amount)


ACTIONS = [book, unbook, pay]


@pytest.fixture(autouse=True)
def clear_log() -> None:
    log.clear()


def scheduled(events: list[Any]) -> list[str]:
    return [f"{e.name}{e.args}" for e in events if isinstance(e, ActionScheduled)]


async def test_compensations_run_in_reverse_and_the_error_propagates() -> None:
    async with Environment(workflows=[trip], actions=ACTIONS) as env:
        handle = await env.client.start(trip, 500)
        with pytest.raises(WorkflowFailedError) as info:
            await handle.result(timeout=10)
        assert info.value.error_type == "ActionFailedError"
        assert "card declined for 500" in info.value.error_message
        assert log == ["book hotel", "book car", "book flight", "pay 500",
                       "unbook flight-booking", "unbook car-booking", "unbook hotel-booking"]
        assert scheduled(await handle.history())[-3:] == [
            "unbook['flight-booking']", "unbook['car-booking']", "unbook['hotel-booking']"]
        # The recorded history replays: the compensations are ordinary, matched commands.
        assert durable.Replayer([trip]).replay(await handle.history()).done


async def test_nothing_is_compensated_when_the_block_succeeds() -> None:
    async with Environment(workflows=[trip], actions=ACTIONS) as env:
        assert await (await env.client.start(trip, 50)).result(timeout=10) == "paid"
        assert not any(entry.startswith("unbook") for entry in log)


async def test_a_compensation_that_itself_fails_hides_neither_the_error_nor_the_others() -> None:
    log.append("break car")
    async with Environment(workflows=[trip], actions=ACTIONS) as env:
        handle = await env.client.start(trip, 500)
        with pytest.raises(WorkflowFailedError) as info:
            await handle.result(timeout=10)
        assert info.value.error_type == "ActionFailedError"  # the original, not the rental desk
        assert "card declined for 500" in info.value.error_message
        assert log[-3:] == ["unbook flight-booking", "unbook car-booking", "unbook hotel-booking"]
        assert "compensation unbook('car-booking') failed too: ActionFailedError" in \
            info.value.traceback
        assert "the rental desk is down" in info.value.traceback


gate: asyncio.Event | None = None


@durable.action(retry=NO_RETRY)
async def slow_unbook(booking: str) -> None:
    log.append(f"slow unbook {booking} started")
    assert gate is not None
    await gate.wait()
    log.append(f"slow unbook {booking} done")


@durable.workflow
async def waits_inside(ctx: durable.Context, slow: bool) -> str:
    async with durable.Saga(ctx) as saga:
        saga.add_compensation(unbook, await ctx.run(book, "hotel"))
        saga.add_compensation(slow_unbook if slow else unbook, await ctx.run(book, "car"))
        await ctx.wait_for("Confirm")
        if slow:
            raise RuntimeError("not confirmed")
    return "confirmed"


async def test_a_cancelled_workflow_compensates_too() -> None:
    async with Environment(workflows=[waits_inside], actions=ACTIONS) as env:
        handle = await env.client.start(waits_inside, False)
        await env.wait_idle()
        await handle.cancel("changed my mind")
        with pytest.raises(WorkflowCancelledError):
            await handle.result(timeout=10)
        assert log == ["book hotel", "book car", "unbook car-booking", "unbook hotel-booking"]
        events = await handle.history()
        cancel_at = next(e.seq for e in events if isinstance(e, CancelRequested))
        assert [e.name for e in events if isinstance(e, ActionScheduled) and e.seq > cancel_at] \
            == ["unbook", "unbook"]


async def test_a_cancellation_during_compensation_waits_for_it_to_finish() -> None:
    global gate
    gate = asyncio.Event()
    async with Environment(workflows=[waits_inside], actions=[*ACTIONS, slow_unbook]) as env:
        handle = await env.client.start(waits_inside, True)
        await env.wait_idle()
        await handle.send("Confirm")  # the block raises: compensation starts with the slow one
        await eventually(lambda: "slow unbook car-booking started" in log,
                         what="the compensation to start")
        await handle.cancel()
        result = asyncio.create_task(handle.result(timeout=10))
        try:
            for _ in range(100):  # the cancellation is delivered; compensation keeps going
                await asyncio.sleep(0)
            assert not result.done()
            gate.set()
            with pytest.raises(WorkflowCancelledError):
                await result
        finally:
            result.cancel()
        assert log[-3:] == ["slow unbook car-booking started", "slow unbook car-booking done",
                            "unbook hotel-booking"]


undone: list[str] = []


async def undo_locally(what: str, *, also: str) -> None:
    undone.append(what)
    undone.append(also)


@durable.workflow
async def explicit(ctx: durable.Context, fail_compensation: bool) -> str:
    saga = durable.Saga(ctx)
    saga.add_compensation(undo_locally, "first", also="x")  # any async function of the workflow
    saga.add_compensation("unbook", "car-booking")  # an action by registered name
    saga.add_compensation(unbook, "flight-booking")
    if fail_compensation:
        log.append("break car")
    try:
        await saga.compensate()
    except durable.errors.CompensationError as exc:
        return f"{exc.failures}"
    await saga.compensate()  # nothing left: each compensation runs once
    return ",".join(undone)


async def test_explicit_compensate_runs_each_once_and_reports_failures() -> None:
    undone.clear()
    async with Environment(workflows=[explicit], actions=ACTIONS) as env:
        assert await (await env.client.start(explicit, False)).result(timeout=10) == "first,x"
        assert log == ["unbook flight-booking", "unbook car-booking"]
        log.clear()
        failures = await (await env.client.start(explicit, True)).result(timeout=10)
        assert "unbook('car-booking')" in failures and "ActionFailedError" in failures


def test_compensation_error_pickles_with_its_failures() -> None:
    err = CompensationError("1 compensation(s) failed", failures=[("unbook('x')", "E", "m")])
    copy = pickle.loads(pickle.dumps(err))
    assert copy.failures == [("unbook('x')", "E", "m")]


@durable.workflow
async def misuses(ctx: durable.Context, how: str) -> str:
    saga = durable.Saga(ctx)
    if how == "arguments":
        saga.add_compensation(unbook, "a", "b")
    elif how == "name":
        saga.add_compensation("no_such_action")
    else:
        saga.add_compensation(42)  # type: ignore[arg-type]
    return "unreachable"


@pytest.mark.parametrize("how, error_type, message", [
    ("arguments", "ValidationError", "unbook() takes 1 positional arguments but 2 were given"),
    ("name", "UnknownActionError", "no action named 'no_such_action'"),
    ("type", "TypeError", "a compensation is an action or an async function, not 42"),
])
async def test_registering_a_bad_compensation_fails_at_once(how: str, error_type: str,
                                                            message: str) -> None:
    async with Environment(workflows=[misuses], actions=ACTIONS) as env:
        with pytest.raises(WorkflowFailedError) as info:
            await (await env.client.start(misuses, how)).result(timeout=10)
        assert info.value.error_type == error_type and message in info.value.error_message
    assert issubclass(UnknownActionError, durable.errors.DurableError)


calls: list[str] = []


async def record_call(what: str) -> None:
    calls.append(what)


@durable.workflow
async def evictable(ctx: durable.Context) -> str:
    async with durable.Saga(ctx) as saga:
        saga.add_compensation(record_call, "compensated")
        await ctx.wait_for("Go")
    return "went"


async def test_an_evicted_instance_does_not_compensate() -> None:
    calls.clear()
    async with Environment(workflows=[evictable]) as env:
        handle = await env.client.start(evictable)
        await env.wait_idle()
        env.worker.cache.clear()  # closes the coroutine (GeneratorExit inside the saga block)
        assert calls == []
        await handle.send("Go")  # rebuilt from history, it goes on
        assert await handle.result(timeout=10) == "went"
        assert calls == []


# ---- the error-strategies example, in virtual time ------------------------------------------


async def test_the_trip_example_shows_stop_retry_compensate_and_continue() -> None:
    from examples import trip as example

    async with Environment(workflows=[example.book_trip], actions=example.ACTIONS) as env:
        alice = await env.client.start(example.book_trip, "t-a", "alice", "Lisbon", 3)
        booked = await alice.result(timeout=10)
        assert booked["not_confirmed_on"] == ["sms"]  # continue
        bob = await env.client.start(example.book_trip, "t-b", "bob", "Oslo", 2)
        with pytest.raises(WorkflowFailedError, match="card of bob declined"):
            await bob.result(timeout=10)
        names = [e.name for e in await bob.history() if isinstance(e, ActionScheduled)]
        assert names == ["quote", "reserve_hotel", "rent_car", "book_flight", "charge",
                         "cancel_flight", "return_car", "cancel_hotel"]  # compensate, reversed
        carol = await env.client.start(example.book_trip, "t-c", "carol", "Rome", 0)
        with pytest.raises(WorkflowFailedError, match="cannot price"):
            await carol.result(timeout=10)
        assert [e.name for e in await carol.history() if isinstance(e, ActionScheduled)] == [
            "quote"]  # stop
        events = await alice.history()
        [flight] = [e.cmd for e in events if isinstance(e, ActionScheduled)
                    and e.name == "book_flight"]
        [booked_flight] = [e for e in events if isinstance(e, ActionCompleted) and e.cmd == flight]
        assert booked_flight.attempt == 3  # retry, its backoff skipped in virtual time
