"""Payload codecs on every store: what a client with a codec writes is encoded at rest
(arguments, results, events, data, requests, schedules), reads back as written, and a reader
without the codec (or with another key) gets a typed error or ``<encoded>``, losing nothing."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from _support import eventually

import durable
from durable._codecs import EXT_CODE
from durable._stores._codec import _payload_fields
from durable.errors import CodecError, PayloadError, UnknownKeyError

KEY = os.urandom(32)
SECRET = "4242-secret-card"


def codec() -> durable.Codec:
    """The codec of these tests (``--codec tests.conformance.test_codecs:codec``)."""
    return durable.CodecChain(durable.ZlibCodec(), durable.AesGcmCodec({"k1": KEY}))


@durable.action(name="codec_charge")
async def charge(card: str, amount: int) -> dict[str, Any]:
    return {"card": card, "charged": amount}


@durable.workflow(name="CodecPay")
async def pay(ctx: durable.Context, card: str, amount: int) -> dict[str, Any]:
    ctx.data["card"] = card
    total = [amount]

    @ctx.on_update("tip")
    def tip(extra: int) -> list[int]:
        total.append(extra)
        return total

    ctx.on_query("total", lambda: {"card": card, "total": sum(total)})
    event = await ctx.wait_for("Confirm")
    await ctx.wait_condition(lambda: len(total) > 1)
    receipt = await ctx.run(charge, event.payload["card"], sum(total))
    return {**receipt, "note": event.payload["note"]}


@durable.action(name="codec_resume", retry=durable.Retry(attempts=2, initial=0.01))
async def resume() -> Any:
    """The first attempt reports a secret step, then fails; the next one reads it back."""
    info = durable.action_info()
    if info.attempt == 1:
        info.heartbeat({"card": SECRET, "step": 3})
        await asyncio.sleep(0.3)  # the worker records the details meanwhile
        raise RuntimeError("the first attempt fails")
    return info.heartbeat_details


@durable.workflow(name="CodecResume")
async def resuming(ctx: durable.Context) -> Any:
    return await ctx.run(resume)


@pytest.fixture
async def client(store_url: str) -> AsyncIterator[durable.Client]:
    async with durable.connect(store_url, tenant="codecs", codec=codec()) as client:
        yield client


def raw(client: durable.Client, **options: Any) -> durable.Client:
    """A client on the same store without the codec (or with ``codec=``)."""
    return durable.Client(client.store.inner, tenant="codecs", **options)  # type: ignore[attr-defined]


def encoded_payloads(record: Any) -> list[Any]:
    values: list[Any] = []
    for name, kind in _payload_fields(type(record)):
        value = getattr(record, name)
        values += [value] if kind == 0 else list(value) if kind == 1 else list(value.values())
    return [v for v in values if v is not None]


async def test_every_payload_is_encoded_at_rest_and_reads_back(client: durable.Client) -> None:
    assert type(client.store.inner).__name__ != "CodecStore"  # type: ignore[attr-defined]  # once
    handle = await client.start(pay, SECRET, 100, id="pay-1")
    async with durable.Worker(client, [pay], [charge], poll_interval=0.01):
        assert await handle.query("total") == {"card": SECRET, "total": 100}
        assert await handle.update("tip", 5) == [100, 5]
        await handle.send("Confirm", {"card": SECRET, "note": "thanks"}, metadata={"by": "u1"})
        assert await handle.result(timeout=20) == {"card": SECRET, "charged": 105,
                                                   "note": "thanks"}
    assert (await handle.describe()).data == {"card": SECRET}
    assert [type(e).__name__ for e in await handle.history()][0] == "WorkflowStarted"

    plain = raw(client)
    history = await plain.get_handle("pay-1").history()
    payloads = [p for e in history for p in encoded_payloads(e)]
    assert len(payloads) >= 8  # arguments, data, update, event, action call, results
    for payload in payloads:
        assert type(payload) is msgspec.msgpack.Ext and payload.code == EXT_CODE
        assert SECRET.encode() not in payload.data
    received = next(e for e in history if isinstance(e, durable.EventReceived))
    assert received.metadata == {"by": "u1"}  # metadata is not a payload: readable
    record = await plain.store.get_execution("codecs", "pay-1")
    assert record is not None
    assert type(record.result) is msgspec.msgpack.Ext and type(record.data["card"]) is msgspec.msgpack.Ext


async def test_a_reader_with_another_key_gets_a_typed_error_and_nothing_is_lost(
        client: durable.Client) -> None:
    handle = await client.start(pay, SECRET, 7, id="pay-2")
    wrong = raw(client, codec=durable.AesGcmCodec({"k9": os.urandom(16)}))
    with pytest.raises(CodecError):  # zlib's byte comes first: not an AES payload
        await wrong.get_handle("pay-2").history()
    other_key = raw(client, codec=durable.CodecChain(
        durable.ZlibCodec(), durable.AesGcmCodec({"k2": os.urandom(16)})))
    with pytest.raises(UnknownKeyError, match="'k1'") as exc:
        await other_key.get_handle("pay-2").history()
    assert exc.value.key_id == "k1" and exc.value.where == "WorkflowStarted.args[0]"
    # Its worker cannot run the workflow: the task is given back, nothing is recorded.
    async with durable.Worker(other_key, [pay], [charge], poll_interval=0.01):
        async def refused() -> bool:
            record = await client.store.get_execution("codecs", "pay-2")
            return record is not None and "UnknownKeyError" in (record.task_error or "")
        await eventually(refused, what="the worker's UnknownKeyError")
    assert len(await handle.history()) == 1
    async with durable.Worker(client, [pay], [charge], poll_interval=0.01):
        await handle.update("tip", 1)
        await handle.send("Confirm", {"card": SECRET, "note": "late"})
        assert (await handle.result(timeout=20))["charged"] == 8
    with pytest.raises(UnknownKeyError):
        await other_key.get_handle("pay-2").result(timeout=5)


async def test_schedules_keep_their_arguments_encoded(client: durable.Client) -> None:
    schedule = await client.schedule(pay, SECRET, 3, id="codec-sched", every=3600, paused=True)
    assert (await schedule.describe()).args == [SECRET, 3]
    record = await client.store.inner.get_schedule("codecs", "codec-sched")  # type: ignore[attr-defined]
    assert all(type(a) is msgspec.msgpack.Ext for a in record.args)


async def test_the_payload_limit_is_the_clients_and_names_itself(store_url: str) -> None:
    async with durable.connect(store_url, tenant="codecs", max_payload_bytes=4096,
                               codec=codec()) as small:
        with pytest.raises(PayloadError, match="limit of 4096 bytes") as exc:
            await small.start(pay, "x" * 5000, 1, id="big-1")
        assert exc.value.limit == 4096 and exc.value.size is not None and exc.value.size > 4096
        handle = await small.start(pay, "x" * 3000, 1, id="big-2")
        with pytest.raises(PayloadError, match="limit of 4096 bytes"):
            await handle.send("Confirm", {"card": "y" * 5000, "note": ""})
        with pytest.raises(PayloadError, match="limit of 4096 bytes"):
            await handle.update("tip", "z" * 5000, timeout=5)
        async with durable.Worker(small, [pay], [charge], poll_interval=0.01):
            await handle.update("tip", 1)
            await handle.send("Confirm", {"card": "c" * 1000, "note": ""})
            # the action's result (card 1000 + the workflow's 3000) fits; the limit held in it
            assert (await handle.result(timeout=20))["charged"] == 2
    # Larger than the default (2 MiB) when the client allows it.
    big = "b" * (3 * 1024 * 1024)
    async with durable.connect(store_url, tenant="codecs") as default:
        with pytest.raises(PayloadError, match="limit of 2097152 bytes"):
            await default.start(pay, big, 1, id="big-3")
    async with durable.connect(store_url, tenant="codecs",
                               max_payload_bytes=8 * 1024 * 1024) as roomy:
        handle = await roomy.start(pay, big, 1, id="big-4")
        assert (await handle.history())[0].args[0] == big  # type: ignore[union-attr]
        # Its worker applies the same limit to workflow code (ctx.data["card"] is 3 MiB).
        async with durable.Worker(roomy, [pay], [charge], poll_interval=0.01):
            await handle.update("tip", 1)
            await handle.send("Confirm", {"card": "c", "note": ""})
            assert (await handle.result(timeout=30))["charged"] == 2
        assert (await handle.describe()).data["card"] == big


async def test_heartbeat_details_are_encoded_and_reach_the_next_attempt(
        client: durable.Client) -> None:
    handle = await client.start(resuming, id="resume-1")
    async with durable.Worker(client, [resuming], [resume], poll_interval=0.01, lease=0.9):
        assert await handle.result(timeout=20) == {"card": SECRET, "step": 3}
    boundary = client.codec
    assert boundary is not None
    details = msgspec.msgpack.encode({"card": SECRET})
    stored = boundary.encode_bytes(details, "details")
    assert SECRET.encode() not in stored
    assert boundary.decode_bytes(stored, "details") == details
    assert boundary.decode_bytes(details, "details") == details  # written before the codec
