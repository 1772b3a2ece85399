"""Order fulfilment: a flaky payment call that is retried, a durable wait, then ship and notify.

``charge_card`` fails on its first two attempts (decided by ``durable.action_info().attempt``,
so the demo behaves the same on every run) and succeeds on the third; the workflow sees one
successful call. Run it in one process (SQLite file ``durable.db``, or ``$DURABLE_DB``)::

    python -m examples.order

or with the CLI::

    durable worker examples.order:worker &
    durable start OrderFulfillment '"ord-1"' 4200 '["book", "pen"]' --id ord-1 --module examples.order
    durable show ord-1
"""

from __future__ import annotations

import uuid
from typing import Any

import durable

from . import _demo


@durable.action(retry=durable.Retry(attempts=5, initial=0.1, backoff=2.0, maximum=5.0))
async def charge_card(order_id: str, amount_cents: int) -> str:
    """Charge the customer; the payment provider is down for the first two attempts."""
    info = durable.action_info()
    if info.attempt <= 2:
        raise ConnectionError(f"payment provider unavailable (attempt {info.attempt})")
    print(f"  [payment] charged {amount_cents} cents for {order_id} on attempt {info.attempt}",
          flush=True)
    # A real provider takes info.idempotency_key so that a retried attempt charges once.
    return f"ch_{uuid.uuid5(uuid.NAMESPACE_URL, info.idempotency_key).hex[:12]}"


@durable.action
async def ship(order_id: str, items: list[str]) -> str:
    """Hand the parcel to the carrier; returns the tracking number."""
    print(f"  [warehouse] shipping {', '.join(items)} for {order_id}", flush=True)
    return f"TRK-{order_id.upper()}"


@durable.action
def notify(order_id: str, message: str) -> None:
    """Tell the customer (a plain function: runs in a thread)."""
    print(f"  [notify] {order_id}: {message}", flush=True)


@durable.workflow(name="OrderFulfillment", version="1")
async def order_fulfillment(ctx: durable.Context, order_id: str, amount_cents: int,
                            items: list[str], pickup_delay: float = 1.0) -> dict[str, str]:
    """Charge, wait ``pickup_delay`` seconds for the pickup slot, ship, notify."""
    ctx.set_state("charging")
    charge_id = await ctx.run(charge_card, order_id, amount_cents)  # retried by its policy
    ctx.data["charge_id"] = charge_id
    ctx.set_state("awaiting_pickup")
    await ctx.sleep(pickup_delay)  # a durable timer
    ctx.set_state("shipping")
    tracking = await ctx.run(ship, order_id, items)
    await ctx.run(notify, order_id, f"shipped, tracking {tracking}")
    ctx.set_state("shipped")
    return {"order_id": order_id, "charge_id": charge_id, "tracking": tracking}


def worker(client: durable.Client, **options: Any) -> durable.Worker:
    """The worker for ``durable worker examples.order:worker``."""
    return durable.Worker(client, workflows=[order_fulfillment],
                          actions=[charge_card, ship, notify], **options)


async def run_demo(url: str) -> dict[str, str]:
    """Start one order with a worker running in-process; print its result and history."""
    async with durable.connect(url) as client, worker(client):
        order_id = f"ord-{uuid.uuid4().hex[:8]}"
        handle = await client.start(order_fulfillment, order_id, 4200, ["book", "pen"],
                                    id=order_id)
        print(f"started {order_id} on {url}")
        result = await handle.result(timeout=60)
        print(f"result: {result}")
        _demo.print_history(await handle.history())
        if not url.startswith("memory:"):
            print(f"(see it again with: durable --db {url} show {order_id})")
        return result


def main() -> int:
    """``python -m examples.order``."""
    return _demo.run(run_demo)


if __name__ == "__main__":
    raise SystemExit(main())
