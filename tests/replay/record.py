"""Record the golden histories in ``tests/replay/histories/`` that do not exist yet.

    .venv/bin/python tests/replay/record.py            # only the missing ones
    .venv/bin/python tests/replay/record.py --force    # all of them, from today's code

A golden history stands for an execution recorded by an earlier version of the code, so the
existing ones are kept: re-recording them from today's code would hide what they check.

Each history is an execution of one of the examples, run in ``durable.testing.Environment``
(virtual time, so the month-long waits take no time) and saved with
``durable.testing.save_history``. Every test run replays them against today's code (the pytest
plugin, configured in ``pyproject.toml``); ``*.nondeterministic.json`` ones must diverge.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import durable  # noqa: E402
from durable.testing import Environment, save_history  # noqa: E402
from examples import concurrency, invoice, order, subscriptions, trip  # noqa: E402

HERE = Path(__file__).resolve().parent / "histories"
START = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)


# OrderFulfillment as it was before it charged first: a history recorded from this version
# no longer matches today's code (it scheduled ship where today's code schedules charge_card).
@durable.workflow(name="OrderFulfillment", version="1")
async def order_fulfillment_v0(ctx: durable.Context, order_id: str, amount_cents: int,
                               items: list[str], pickup_delay: float = 1.0) -> dict[str, str]:
    """The old order of steps: ship, then charge."""
    tracking = await ctx.run(order.ship, order_id, items)
    charge_id = await ctx.run(order.charge_card, order_id, amount_cents)
    return {"order_id": order_id, "charge_id": charge_id, "tracking": tracking}


# Invoice as it was before metered billing (no ctx.patched call): today's code replays the
# flat fee for it, because patched("metered-billing") is False where no marker was recorded.
@durable.workflow(name="Invoice", version="1")
async def invoice_v1(ctx: durable.Context, customer: str, month: int) -> str:
    """The flat fee."""
    return await ctx.run(subscriptions.charge, customer, 900)


FORCE = "--force" in sys.argv[1:]


async def record(name: str, workflows: list[Any], actions: list[Any], start: Any,
                 drive: Any = None) -> None:
    if (HERE / f"{name}.json").exists() and not FORCE:
        print(f"kept {name}.json")
        return
    async with Environment(workflows=workflows, actions=actions, start=START) as env:
        handle = await start(env.client)
        events = None  # a drive may pick the history to keep (an earlier run, a child's)
        if drive is not None:
            events = await drive(env, handle)
        else:
            await handle.result(timeout=30)
        save_history(events or await handle.history(), HERE / f"{name}.json")
        print(f"recorded {name}.json")


async def main() -> None:
    HERE.mkdir(exist_ok=True)
    order_actions = [order.charge_card, order.ship, order.notify]
    await record("order-fulfilled", [order.order_fulfillment], order_actions,
                 lambda c: c.start(order.order_fulfillment, "ord-1", 4200, ["book", "pen"],
                                   id="ord-1"))
    await record("order-v0.nondeterministic", [order_fulfillment_v0], order_actions,
                 lambda c: c.start(order_fulfillment_v0, "ord-0", 1500, ["mug"], id="ord-0"))

    invoice_actions = [invoice.send_email, invoice.log_event]

    async def approve(env: Environment, handle: Any) -> None:
        await handle.send("Submit", {"by": "u1"})
        await env.sleep(3600)  # a decision an hour later
        await handle.send("Approve", {"by": "boss"}, idempotency_key="approve-inv-1")
        await handle.result(timeout=30)

    async def expire(env: Environment, handle: Any) -> None:
        await handle.send("Submit", {"by": "u3"})
        assert await handle.result(timeout=30) == "expired"  # after three (virtual) days

    async def submit_only(env: Environment, handle: Any) -> None:
        await handle.send("Submit", {"by": "u2"})
        await env.wait_idle()  # left waiting for a decision: an unfinished history

    await record("invoice-approved", [invoice.invoice_approval], invoice_actions,
                 lambda c: c.start(invoice.invoice_approval, "inv-1", 500, id="inv-1"), approve)
    await record("invoice-expired", [invoice.invoice_approval], invoice_actions,
                 lambda c: c.start(invoice.invoice_approval, "inv-2", 900, id="inv-2"), expire)
    await record("invoice-waiting", [invoice.invoice_approval], invoice_actions,
                 lambda c: c.start(invoice.invoice_approval, "inv-3", 70, id="inv-3"), submit_only)

    async def fails(env: Environment, handle: Any) -> None:
        try:
            await handle.result(timeout=30)
        except durable.errors.WorkflowFailedError:
            return
        raise AssertionError("this trip must fail")

    await record("trip-booked", [trip.book_trip], trip.ACTIONS,
                 lambda c: c.start(trip.book_trip, "trip-1", "alice", "Lisbon", 3, id="trip-1"))
    await record("trip-compensated", [trip.book_trip], trip.ACTIONS,
                 lambda c: c.start(trip.book_trip, "trip-2", "bob", "Oslo", 2, id="trip-2"), fails)
    await record_subscriptions()
    await record_concurrency()


async def record_subscriptions() -> None:
    """Child workflows, continue-as-new, cancellation and a patch (examples.subscriptions)."""
    sub, actions = subscriptions.subscription, subscriptions.ACTIONS

    async def first_month(env: Environment, handle: Any) -> Any:
        first = (await handle.describe()).run_id
        await env.sleep(subscriptions.MONTH + 60)  # the month passes: it continues as new
        await env.wait_idle()
        return await handle.history(run_id=first)  # ends with WorkflowContinuedAsNew

    async def cancelled(env: Environment, handle: Any) -> None:
        await env.wait_idle()  # billed; waiting for the next month
        await handle.cancel("customer left")
        try:
            await handle.result(timeout=30)
        except durable.errors.WorkflowCancelledError:
            return
        raise AssertionError("this subscription must be cancelled")

    await record("subscription-first-month", subscriptions.WORKFLOWS, actions,
                 lambda c: c.start(sub, "ada", id="sub-1"), first_month)
    await record("subscription-cancelled", subscriptions.WORKFLOWS, actions,
                 lambda c: c.start(sub, "bob", id="sub-2"), cancelled)
    await record("invoice-metered", [subscriptions.invoice], actions,
                 lambda c: c.start(subscriptions.invoice, "ada", 3, id="inv-m"))
    await record("invoice-flat", [invoice_v1], actions,
                 lambda c: c.start(invoice_v1, "ada", 3, id="inv-f"))


async def record_concurrency() -> None:
    """Plain asyncio in workflows (examples.concurrency): each idiom that iterates a set of
    tasks, so that an engine change that alters an order is caught."""
    wfs, actions = concurrency.WORKFLOWS, concurrency.ACTIONS

    async def confirmed_early(env: Environment, handle: Any) -> None:
        await handle.send("confirm-globex")  # before the workflow runs, together with
        await handle.send("confirm-umbrella")  # another one
        await handle.result(timeout=30)

    async def opened_early(env: Environment, handle: Any) -> None:
        await handle.send("open")
        await handle.result(timeout=30)

    for name, wf, arg, drive in [
            ("concurrency-race", concurrency.cheapest_quote, "bolts", None),
            ("concurrency-as-completed", concurrency.quotes_as_they_come, "nuts", None),
            ("concurrency-taskgroup", concurrency.book_all_or_nothing, "gears", confirmed_early),
            ("concurrency-timeout-shield", concurrency.quotes_within, "pins", None),
            ("concurrency-pipeline", concurrency.order_pipeline, ["bolts", "nuts"], opened_early)]:
        await record(name, wfs, actions,
                     lambda c, wf=wf, arg=arg, name=name: c.start(wf, arg, id=name), drive)


if __name__ == "__main__":
    asyncio.run(main())
