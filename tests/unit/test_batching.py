"""Group commit: ``Batcher`` coalesces concurrent calls and keeps each caller's outcome apart."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from durable._batching import Batcher
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
