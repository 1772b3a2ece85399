"""Signals: metadata recorded with each event, payloads converted to the annotated type
(``wait_for(type=...)`` and ``ctx.on_signal`` handlers), handlers that take events sent before
they were registered, and bad input refused with nothing recorded."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import pytest

import durable
from durable.errors import ArgumentTypeError, PayloadError, ValidationError
from durable.testing import Environment


@dataclasses.dataclass
class Approval:
    by: str
    amount: int


@durable.workflow(name="SignalsApprove")
async def approve(ctx: durable.Context) -> list[Any]:
    event = await ctx.wait_for("Approve", type=Approval)
    assert event is not None and isinstance(event.payload, Approval)
    return [event.payload.by, event.payload.amount, event.metadata]


async def test_metadata_is_recorded_and_the_payload_converted() -> None:
    async with Environment(workflows=[approve]) as env:
        handle = await env.client.start(approve)
        await handle.send("Approve", {"by": "ann", "amount": 5}, metadata={"user_id": "u7"})
        assert await handle.result() == ["ann", 5, {"user_id": "u7"}]
        received = (await handle.history()).of_type(durable.EventReceived)
        assert [(e.payload, e.metadata) for e in received] == [
            ({"by": "ann", "amount": 5}, {"user_id": "u7"})]
        replayed = durable.Replayer(workflows=[approve]).replay(await handle.history())
        assert replayed.done


@durable.workflow(name="SignalsWrongType")
async def wrong_type(ctx: durable.Context) -> str:
    try:
        await ctx.wait_for("Approve", type=Approval)
    except ValidationError as exc:
        return f"refused: {'Approval' in str(exc)}"
    return "accepted"


async def test_a_payload_of_the_wrong_type_raises_in_the_workflow() -> None:
    async with Environment(workflows=[wrong_type]) as env:
        handle = await env.client.start(wrong_type)
        await handle.send("Approve", {"by": "ann"})  # no amount
        assert await handle.result() == "refused: True"


@durable.workflow(name="SignalsHandlers")
async def handlers(ctx: durable.Context) -> list[Any]:
    seen: list[Any] = []
    ctx.on_signal("note", lambda text, meta: seen.append((text, meta.get("by"))))
    await ctx.wait_for("go")

    @ctx.on_signal("add")  # registered after two "add" events arrived: it takes them, in order
    async def add(approval: Approval) -> None:
        await ctx.sleep(1.0)  # handlers may await timers and actions
        seen.append(approval.amount)

    await ctx.wait_condition(lambda: len(seen) >= 3)
    left = await ctx.wait_for("add", timeout=0)  # the one that did not fit was kept
    return [seen, None if left is None else left.payload]


async def test_handlers_take_events_sent_before_they_were_registered(
        caplog: pytest.LogCaptureFixture) -> None:
    async with Environment(workflows=[handlers]) as env:
        handle = await env.client.start(handlers)
        await handle.send("add", {"by": "a", "amount": 1})
        await handle.send("add", {"by": "b"})  # no amount: not for the handler
        await handle.send("add", {"by": "c", "amount": 3})
        await handle.send("note", "hello", metadata={"by": "ann"})
        with caplog.at_level(logging.WARNING, logger="durable.workflow"):
            await handle.send("go")
            assert await handle.result() == [[("hello", "ann"), 1, 3], {"by": "b"}]
        assert "was not given to its handler" in caplog.text
        assert durable.Replayer(workflows=[handlers]).replay(await handle.history()).done


@durable.workflow(name="SignalsWaiting")
async def waiting(ctx: durable.Context) -> None:
    await ctx.wait_for("never")


@pytest.mark.parametrize(("metadata", "error"), [
    ("user=u1", ValidationError), ({1: "x"}, ValidationError), ({"": "x"}, ValidationError),
    ({"blob": "x" * 20_000}, PayloadError), ({"bad": object()}, PayloadError)])
async def test_bad_metadata_is_refused_and_nothing_is_recorded(metadata: Any,
                                                               error: type[Exception]) -> None:
    async with Environment(workflows=[waiting]) as env:
        handle = await env.client.start(waiting)
        with pytest.raises(error):
            await handle.send("never", 1, metadata=metadata)
        assert (await handle.history()).of_type(durable.EventReceived) == []


@durable.workflow(name="SignalsBadHandler")
async def bad_handler(ctx: durable.Context, arity: int) -> str:
    handler = (lambda: None) if arity == 0 else (lambda a, b, c: None)
    try:
        ctx.on_signal("x", handler)
    except ArgumentTypeError as exc:
        return str(exc)
    return "registered"


async def test_a_handler_takes_one_or_two_parameters() -> None:
    async with Environment(workflows=[bad_handler]) as env:
        for arity in (0, 3):
            handle = await env.client.start(bad_handler, arity)
            assert "one or two positional parameters" in await handle.result()
