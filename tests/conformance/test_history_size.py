"""``ctx.info.history_length``, ``history_bytes`` and ``continue_as_new_suggested``, on every
store: what the workflow reads follows from the recorded history, so replay reads the same."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
import pytest

import durable
from durable._history import ActionCompleted, EventReceived, TaskCompleted
from durable._replay._info import CONTINUE_AS_NEW_BYTES, CONTINUE_AS_NEW_EVENTS, HistorySize

_size = msgspec.msgpack.Encoder().encode


@durable.action(name="hs_echo", timeout=5.0)  # a first attempt that may run inline
async def echo(text: str) -> str:
    return text * 3


@durable.action(name="hs_queued")  # no timeout: always a task of its own
async def queued(n: int) -> int:
    return n + 1


@durable.workflow(name="HSGrowing")
async def growing(ctx: durable.Context, steps: int) -> list[list[int]]:
    seen: list[list[int]] = []

    def look() -> None:
        info = ctx.info
        seen.append([info.history_length, info.history_bytes,
                     int(info.continue_as_new_suggested)])
        ctx.data["seen"] = list(seen)  # strict replay fails if a value differs

    look()
    for i in range(steps):
        await ctx.run(echo, "x" * (i + 1))
        look()
        await ctx.run(queued, i)
        look()
    await ctx.wait_for("go")
    look()
    return seen


@pytest.fixture
async def client(store_url: str) -> AsyncIterator[durable.Client]:
    async with durable.connect(store_url, tenant="history-size") as client:
        yield client


async def test_the_history_size_is_what_history_recorded_up_to_the_newest_input(
        client: durable.Client) -> None:
    handle = await client.start(growing, 3, id="hs-1")
    async with durable.Worker(client, [growing], [echo, queued], poll_interval=0.01):
        await handle.send("go", {"by": "test"})
        seen = await handle.result(timeout=20)
    history = await handle.history()
    # At each activation: the events up to the newest input (the seq before its TaskCompleted).
    boundaries = [e.seq - 1 for e in history if isinstance(e, TaskCompleted)]
    expected = {n: sum(len(_size(e)) for e in history if e.seq <= n) for n in boundaries}
    assert len(seen) == 2 * 3 + 2
    assert [length for length, _, _ in seen] == sorted(length for length, _, _ in seen)
    assert len({length for length, _, _ in seen}) >= 2 * 3  # each action's outcome is an input
    for length, size, suggested in seen:
        assert length in expected and size == expected[length] and suggested == 0
    assert seen[0][0] in (1, 2)  # the signal may have come with the start
    assert seen[-1][0] >= next(e.seq for e in history if isinstance(e, EventReceived))
    # Replayed from scratch (no cache), the workflow reads the same values.
    replayed = durable.Replayer([growing], [echo, queued], strict=True).replay(history)
    assert replayed.done and replayed.data["seen"] == seen


async def test_a_worker_that_rebuilds_the_instance_reads_the_same_sizes(
        client: durable.Client) -> None:
    handle = await client.start(growing, 3, id="hs-2")
    # No cache: every workflow task replays the history before it runs the new inputs.
    async with durable.Worker(client, [growing], [echo, queued], poll_interval=0.01,
                              max_cached=0, inline_actions=False):
        await handle.send("go")
        seen = await handle.result(timeout=20)
    history = await handle.history()
    assert len(seen) == 2 * 3 + 2
    for length, size, _ in seen:
        assert size == sum(len(_size(e)) for e in history if e.seq <= length)
    assert durable.Replayer([growing], [echo, queued], strict=True).replay(history).done


def test_continuing_as_new_is_suggested_past_the_documented_thresholds() -> None:
    def info(size: HistorySize) -> durable.WorkflowInfo:
        return durable.WorkflowInfo("w", "r", "t", "wf", "1", history_size=size)

    size = HistorySize()
    size.recorded([ActionCompleted(seq, 0.0, seq, None) for seq in range(1, 10)])
    size.length = 9
    assert info(size).history_length == 9 and not info(size).continue_as_new_suggested
    size.length = CONTINUE_AS_NEW_EVENTS + 1
    assert info(size).continue_as_new_suggested
    big = HistorySize()
    blob = b"x" * (1024 * 1024)
    big.recorded([ActionCompleted(seq, 0.0, seq, blob) for seq in range(1, 12)])
    big.length = 9
    assert info(big).history_bytes < CONTINUE_AS_NEW_BYTES
    assert not info(big).continue_as_new_suggested
    big.length = 11
    assert info(big).history_bytes > CONTINUE_AS_NEW_BYTES and info(big).continue_as_new_suggested
    assert durable.WorkflowInfo("w", "r", "t", "wf", "1").history_bytes == 0
