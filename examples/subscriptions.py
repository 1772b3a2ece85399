"""Subscriptions: child workflows, continue-as-new, cancellation and a patch, in one process.

    python -m examples.subscriptions        # on $DURABLE_DB (default sqlite:///durable.db)

A ``Subscription`` bills its customer once a period: each bill is an ``Invoice`` child
workflow, awaited for its receipt. After each period the subscription continues as new, so
its history stays the same size however long it runs. ``Cancel`` (an event) ends it with the
receipts; ``handle.cancel()`` stops it at once: the invoice in progress is cancelled with it,
and a goodbye email is sent as cleanup.

``Invoice`` once charged a flat fee; the change to metered billing is wrapped in
``ctx.patched("metered-billing")``, so invoices recorded before it replay their flat fee.
"""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta

import durable

MONTH = timedelta(days=30).total_seconds()


@durable.action(timeout=10)
async def usage(customer: str, month: int) -> int:
    """How many units the customer used that month (a metering service)."""
    return 7 * month


@durable.action(timeout=10)
async def charge(customer: str, cents: int) -> str:
    """Charge the customer (a payment provider); returns the receipt."""
    return f"{customer}:{cents}c"


@durable.action(timeout=10)
async def send_email(customer: str, text: str) -> None:
    """Tell the customer (an email service)."""
    print(f"  email to {customer}: {text}")


@durable.workflow(name="Invoice", version="2")
async def invoice(ctx: durable.Context, customer: str, month: int) -> str:
    """Charge one month: metered since version 2, a flat fee before."""
    if ctx.patched("metered-billing"):
        cents = 500 + 10 * await ctx.run(usage, customer, month)
    else:
        cents = 900
    return await ctx.run(charge, customer, cents)


@durable.workflow(name="Subscription", version="2")
async def subscription(ctx: durable.Context, customer: str, month: int = 1,
                       period: float = MONTH, receipts: list[str] | None = None) -> list[str]:
    """Bill every ``period`` seconds until ``Cancel``; each run bills one month."""
    receipts = receipts or []
    try:
        bill = await ctx.start_child(invoice, customer, month,
                                     id=f"{ctx.info.workflow_id}-{month}")
        receipts = [*receipts, await bill]
        if await ctx.wait_for("Cancel", timeout=period) is None:
            ctx.continue_as_new(customer, month + 1, period, receipts[-12:])
        return receipts
    except asyncio.CancelledError:  # handle.cancel(): the invoice in flight is cancelled too
        await ctx.run(send_email, customer, "sorry to see you go")
        raise


WORKFLOWS = [subscription, invoice]
ACTIONS = [usage, charge, send_email]


async def main() -> None:
    url = os.environ.get("DURABLE_DB", "sqlite:///durable.db")
    async with durable.connect(url) as client:
        async with durable.Worker(client, WORKFLOWS, ACTIONS, lease=2.0):
            handle = await client.start(subscription, "ada", 1, 0.2, id="sub-ada")
            await asyncio.sleep(0.7)  # a few 0.2 s "months"
            await handle.send("Cancel")
            receipts = await handle.result()
            description = await handle.describe()
            print(f"ada: {receipts}, status {description.status}, on run "
                  f"{description.run_id[:8]} (continued from "
                  f"{(await handle.history()).started.continued_from})")

            other = await client.start(subscription, "bob", 1, 3600.0, id="sub-bob")
            await asyncio.sleep(0.3)  # billed, now waiting for the next month
            await other.cancel("customer left")
            try:
                await other.result()
            except durable.errors.WorkflowCancelledError:
                print(f"bob: cancelled; history: "
                      f"{[type(e).__name__ for e in await other.history()][-4:]}")


if __name__ == "__main__":
    asyncio.run(main())
