"""Plain asyncio inside workflows: each idiom replays exactly as it ran.

A price comparison shows the constructs a workflow may use, unchanged from ordinary asyncio:

* ``cheapest_quote``: ``asyncio.wait(FIRST_COMPLETED)`` races the suppliers against a
  deadline; the losers are cancelled by iterating the ``pending`` set, and each records that it
  withdrew (an action in its ``except CancelledError``);
* ``quotes_as_they_come``: ``asyncio.as_completed`` over coroutines that call one action;
* ``book_all_or_nothing``: an ``asyncio.TaskGroup`` books every supplier; one refusal cancels
  the others, which release what they held;
* ``quotes_within``: ``asyncio.gather`` under ``asyncio.timeout`` (the slow supplier is
  cancelled), and ``asyncio.shield`` keeps an audit going when its waiter gives up;
* ``order_pipeline``: an ``asyncio.Queue`` between a producer and a consumer, an
  ``asyncio.Event`` that opens the shop, a ``Semaphore`` that lets two suppliers in at a time,
  a ``Lock`` around the ledger and a ``Condition`` the closing waits on.

Sets of tasks and futures made on a workflow's loop are iterated in the order they were made,
so the losers above are cancelled, and their clean-ups recorded, in the same order on every
replay; see "Plain asyncio in workflows" in the README.

Run it in one process (SQLite file ``durable.db``, or ``$DURABLE_DB``)::

    python -m examples.concurrency
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import durable

from . import _demo

SUPPLIERS = ("acme", "globex", "initech", "umbrella", "hooli", "stark")
DELAYS = {"acme": 0.6, "globex": 0.2, "initech": 0.4, "umbrella": 0.2, "hooli": 0.4,
          "stark": 0.2}  # each replies after so many seconds


@durable.action
async def ask_price(supplier: str, item: str) -> int:
    """A supplier's price for an item, in cents."""
    return 100 + 37 * SUPPLIERS.index(supplier) + len(item)


@durable.action
async def withdraw(supplier: str, item: str) -> str:
    """Tell a supplier its quote is no longer needed."""
    return f"{supplier} withdrew"


@durable.action
async def reserve(supplier: str, item: str) -> str:
    """Hold stock at a supplier; one that is out of stock refuses."""
    if supplier == "acme":
        raise durable.NonRetryable(f"{supplier} is out of {item}")
    return f"{supplier}:{item}"


@durable.action
async def release(supplier: str, item: str) -> str:
    """Give back stock that was held."""
    return f"{supplier} released {item}"


async def _quote(ctx: durable.Context, supplier: str, item: str) -> tuple[str, int]:
    """Wait for a supplier's reply (a durable timer), then ask the price; withdraw if
    cancelled first."""
    try:
        await asyncio.sleep(DELAYS[supplier])
        return supplier, await ctx.run(ask_price, supplier, item)
    except asyncio.CancelledError:
        await asyncio.shield(ctx.run(withdraw, supplier, item))
        ctx.set_state(f"{supplier} withdrew")
        raise


@durable.workflow
async def cheapest_quote(ctx: durable.Context, item: str) -> list[Any]:
    """The first replies within the deadline; the slower suppliers withdraw."""
    tasks = [asyncio.ensure_future(_quote(ctx, s, item)) for s in SUPPLIERS]
    done, pending = await asyncio.wait(tasks, timeout=0.3, return_when=asyncio.ALL_COMPLETED)
    for task in pending:  # a set: cancelled, and withdrawn, in the order the tasks were made
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    ctx.data["withdrawn"] = len(pending)
    return [list(t.result()) for t in done]


@durable.workflow
async def quotes_as_they_come(ctx: durable.Context, item: str) -> list[list[Any]]:
    """Every supplier's price, in the order the replies arrive."""
    replies: list[list[Any]] = []
    for next_reply in asyncio.as_completed([_quote(ctx, s, item) for s in SUPPLIERS]):
        supplier, price = await next_reply
        replies.append([supplier, price])
        ctx.set_state(f"{len(replies)} replies")
    return replies


@durable.workflow
async def book_all_or_nothing(ctx: durable.Context, item: str) -> dict[str, Any]:
    """Reserve at every supplier at once; one refusal cancels and releases the rest."""
    released: list[str] = []

    async def hold(supplier: str) -> str:
        await asyncio.sleep(DELAYS[supplier])
        held = await ctx.run(reserve, supplier, item)
        try:
            await ctx.wait_for(f"confirm-{supplier}")
        except asyncio.CancelledError:
            released.append(await asyncio.shield(ctx.run(release, supplier, item)))
            raise
        return held

    refused: list[str] = []
    try:
        async with asyncio.TaskGroup() as group:
            for supplier in SUPPLIERS:
                group.create_task(hold(supplier))
    except* durable.errors.ActionFailedError as failed:
        refused = [e.error_message for e in failed.exceptions
                   if isinstance(e, durable.errors.ActionFailedError)]
    return {"refused": refused, "released": released}


@durable.workflow
async def quotes_within(ctx: durable.Context, item: str) -> dict[str, Any]:
    """The quotes, if all arrive within 0.5 s, and an audit that finishes regardless."""
    audit = asyncio.ensure_future(_quote(ctx, "acme", f"audit-{item}"))
    try:
        async with asyncio.timeout(0.5):
            quotes = await asyncio.gather(*(_quote(ctx, s, item) for s in SUPPLIERS))
    except TimeoutError:
        quotes = []
    try:
        audited = await asyncio.wait_for(asyncio.shield(audit), timeout=0.05)
    except TimeoutError:
        audited = await audit  # the shield kept it running
    return {"quotes": [list(q) for q in quotes], "audit": list(audited)}


@durable.workflow
async def order_pipeline(ctx: durable.Context, items: list[str]) -> dict[str, Any]:
    """Producer, consumer and the synchronization primitives between tasks."""
    queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=1)
    opened = asyncio.Event()
    gate = asyncio.Semaphore(2)
    ledger_lock = asyncio.Lock()
    closing = asyncio.Condition()
    ledger: list[str] = []

    async def produce() -> None:
        await ctx.wait_for("open")
        opened.set()
        for item in items:
            await queue.put(item)
        await queue.put(None)

    async def buy(item: str, supplier: str) -> None:
        async with gate:
            price = await ctx.run(ask_price, supplier, item)
        async with ledger_lock:
            ledger.append(f"{item}@{supplier}={price}")
        async with closing:
            closing.notify_all()

    async def consume() -> list[asyncio.Task[None]]:
        await opened.wait()
        buying: list[asyncio.Task[None]] = []
        while (item := await queue.get()) is not None:
            for supplier in SUPPLIERS[:2]:
                buying.append(asyncio.ensure_future(buy(item, supplier)))
        return buying

    producer = asyncio.ensure_future(produce())
    buying = await consume()
    await producer
    async with closing:
        await closing.wait_for(lambda: len(ledger) == len(buying))
    ctx.data["ledger"] = ledger
    return {"bought": len(ledger), "ledger": ledger}


WORKFLOWS = [cheapest_quote, quotes_as_they_come, book_all_or_nothing, quotes_within,
             order_pipeline]
ACTIONS = [ask_price, withdraw, reserve, release]


def worker(client: durable.Client, **options: Any) -> durable.Worker:
    """The worker for ``durable worker examples.concurrency:worker``."""
    return durable.Worker(client, workflows=WORKFLOWS, actions=ACTIONS, **options)


async def run_demo(url: str) -> dict[str, Any]:
    """Run each workflow once with a worker in-process; print what each returned."""
    results: dict[str, Any] = {}
    async with durable.connect(url) as client, worker(client):
        runs: list[tuple[Any, Any]] = [
            (cheapest_quote, "bolts"), (quotes_as_they_come, "nuts"),
            (book_all_or_nothing, "gears"), (quotes_within, "pins"),
            (order_pipeline, ["bolts", "nuts"])]
        for wf, arg in runs:
            name = wf.__durable_workflow__.name
            handle = await client.start(wf, arg, id=f"{name}-{uuid.uuid4().hex[:6]}")
            if wf is order_pipeline:
                await handle.send("open")
            if wf is book_all_or_nothing:
                await handle.send("confirm-globex")
            results[name] = await handle.result(timeout=60)
            print(f"{name}: {results[name]}", flush=True)
    return results


def main() -> int:
    """``python -m examples.concurrency``."""
    return _demo.run(run_demo)


if __name__ == "__main__":
    raise SystemExit(main())
