"""Group commit: ``Batcher`` coalesces concurrent calls and keeps each caller's outcome apart."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence

import pytest

from durable._batching import Batcher
from durable._lanes import enter
from durable.errors import StoreUnavailableError


class Recorder:
    """``run_many`` / ``run_one`` that record their calls; item ``"bad"`` breaks a batch."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.singles: list[str] = []
        self.down = False

    async def many(self, items: Sequence[str]) -> list[str]:
        self.batches.append(list(items))
        await asyncio.sleep(0)
        if self.down:
            raise StoreUnavailableError("down")
        if "bad" in items:
            raise ValueError("a bad item spoils its transaction")
        return [item.upper() for item in items]

    async def one(self, item: str) -> str:
        self.singles.append(item)
        if item == "bad":
            raise ValueError("bad item")
        return item.upper()


async def test_calls_in_one_turn_share_a_batch() -> None:
    rec = Recorder()
    batcher: Batcher[str, str] = Batcher(rec.many, rec.one, max_in_flight=1)
    results = await asyncio.gather(*(batcher.submit(x) for x in "abcde"))
    assert results == list("ABCDE")
    assert rec.batches == [list("abcde")] and rec.singles == []


async def test_a_lone_call_goes_out_alone_at_once() -> None:
    rec = Recorder()
    batcher: Batcher[str, str] = Batcher(rec.many, rec.one)
    assert await batcher.submit("x") == "X"
    assert rec.batches == [] and rec.singles == ["x"]


async def test_calls_made_while_batches_are_in_flight_wait_and_go_together() -> None:
    rec = Recorder()
    batcher: Batcher[str, str] = Batcher(rec.many, rec.one, max_in_flight=1)

    async def later(item: str) -> str:
        await asyncio.sleep(0)  # arrives while the first batch is out
        return await batcher.submit(item)

    results = await asyncio.gather(batcher.submit("a"), batcher.submit("b"),
                                   *(later(x) for x in "cde"))
    assert results == list("ABCDE")
    assert rec.batches == [["a", "b"], ["c", "d", "e"]]


async def test_max_batch_splits_a_turn() -> None:
    rec = Recorder()
    batcher: Batcher[str, str] = Batcher(rec.many, rec.one, max_in_flight=3, max_batch=2)
    assert await asyncio.gather(*(batcher.submit(x) for x in "abcde")) == list("ABCDE")
    assert rec.batches == [["a", "b"], ["c", "d"]] and rec.singles == ["e"]


async def test_an_item_that_breaks_its_batch_fails_alone() -> None:
    rec = Recorder()
    batcher: Batcher[str, str] = Batcher(rec.many, rec.one)
    results = await asyncio.gather(batcher.submit("a"), batcher.submit("bad"),
                                   batcher.submit("c"), return_exceptions=True)
    assert results[0] == "A" and results[2] == "C"
    assert isinstance(results[1], ValueError) and str(results[1]) == "bad item"
    assert sorted(rec.singles) == ["a", "bad", "c"]


async def test_a_shared_error_reaches_every_caller_without_retries() -> None:
    rec = Recorder()
    rec.down = True
    batcher: Batcher[str, str] = Batcher(rec.many, rec.one, shared_errors=(StoreUnavailableError,))
    results = await asyncio.gather(*(batcher.submit(x) for x in "abc"), return_exceptions=True)
    assert all(isinstance(r, StoreUnavailableError) for r in results)
    assert rec.singles == []


async def test_a_cancelled_caller_leaves_the_batch_running() -> None:
    rec = Recorder()
    batcher: Batcher[str, str] = Batcher(rec.many, rec.one)
    first = asyncio.ensure_future(batcher.submit("a"))
    second = asyncio.ensure_future(batcher.submit("b"))
    await asyncio.sleep(0)
    first.cancel()
    assert await second == "B"
    with pytest.raises(asyncio.CancelledError):
        await first
    await batcher.close()
    assert rec.batches == [["a", "b"]]


async def _in_lane(tenant: str, call: Awaitable[str]) -> str:
    enter(tenant)  # this task's lane (a task of its own: its context is a copy)
    return await call


class SlowBatches(Recorder):
    """A batch takes many turns of the loop (a long transaction)."""

    async def many(self, items: Sequence[str]) -> list[str]:
        for _ in range(20):
            await asyncio.sleep(0)
        return await super().many(items)


@pytest.mark.parametrize("express", [0, 1])
async def test_express_sends_a_lone_lane_s_call_past_a_busy_batcher(express: int) -> None:
    rec = SlowBatches()
    batcher: Batcher[str, str] = Batcher(rec.many, rec.one, max_in_flight=1, express=express)
    done: list[str] = []

    async def call(tenant: str, item: str) -> None:
        if tenant == "quiet":
            await asyncio.sleep(0)  # arrives while noisy's batch is out
        done.append(await _in_lane(tenant, batcher.submit(item)))

    await asyncio.gather(call("noisy", "a"), call("noisy", "b"), call("noisy", "c"),
                         call("quiet", "q"))
    assert rec.batches == [["a", "b", "c"]] and rec.singles == ["q"]
    # with express, quiet's call is answered first; without, after noisy's whole batch
    assert done == (["Q", "A", "B", "C"] if express else ["A", "B", "C", "Q"])


class SlowSingles(Recorder):
    """A call sent alone takes a few turns of the loop (a round trip)."""

    async def one(self, item: str) -> str:
        for _ in range(3):
            await asyncio.sleep(0)
        return await super().one(item)


async def test_express_is_for_lanes_with_nothing_else_here_and_is_bounded() -> None:
    rec = SlowSingles()
    batcher: Batcher[str, str] = Batcher(rec.many, rec.one, max_in_flight=1, express=1)

    async def later(tenant: str, item: str) -> str:
        await asyncio.sleep(0)  # while the first batch is out
        return await _in_lane(tenant, batcher.submit(item))

    results = await asyncio.gather(
        _in_lane("noisy", batcher.submit("a")), _in_lane("noisy", batcher.submit("b")),
        later("noisy", "c"),  # noisy has calls here: it waits for the next batch
        later("quiet", "q"),  # alone in its lane: out at once
        later("other", "o"))  # alone too, but the one express slot is taken
    assert results == ["A", "B", "C", "Q", "O"]
    assert rec.singles == ["q"]
    assert rec.batches == [["a", "b"], ["c", "o"]]
    assert batcher._lanes == {}  # nothing queued or out: no lane counted
