"""A shopping cart: callers read it with queries and change it with validated updates.

``items`` and ``total`` are queries (they read the live workflow and add nothing to its
history); ``add`` is an update whose validator refuses unknown products and duplicates before
anything is recorded, and whose handler looks the price up with an action and returns the new
total. ``Checkout`` (an event) ends it. Run it in one process (SQLite file ``durable.db``, or
``$DURABLE_DB``)::

    python -m examples.cart

or with the CLI::

    durable worker examples.cart:worker &
    durable start ShoppingCart '"ann"' --id cart-1 --module examples.cart
    durable update cart-1 add '"tea"' --key cart-1-tea
    durable query cart-1 total
    durable send cart-1 Checkout
"""

from __future__ import annotations

import uuid
from typing import Any

import durable
from durable.errors import UpdateRejectedError

from . import _demo

PRICES = {"tea": 4, "cake": 7, "jam": 5}  # stands in for a catalogue service


@durable.action
def look_up_price(product: str) -> int:
    """Ask the catalogue for a price (an action: it runs once, its result is recorded)."""
    return PRICES[product]


@durable.workflow(name="ShoppingCart")
async def shopping_cart(ctx: durable.Context, customer: str) -> dict[str, Any]:
    """Collect products until ``Checkout``; return the order."""
    items: list[str] = []
    total = 0
    ctx.set_state("open")

    ctx.on_query("items", lambda: list(items))
    ctx.on_query("total", lambda: total)

    def known_and_new(product: str) -> None:
        if product not in PRICES:
            raise ValueError(f"we do not sell {product!r}")
        if product in items:
            raise ValueError(f"{product!r} is in the cart already")

    @ctx.on_update("add", validator=known_and_new)
    async def add(product: str) -> int:
        nonlocal total
        total += await ctx.run(look_up_price, product)
        items.append(product)
        return total

    await ctx.wait_for("Checkout")
    ctx.set_state("ordered")
    return {"customer": customer, "items": items, "total": total}


def worker(client: durable.Client, **options: Any) -> durable.Worker:
    """The worker for ``durable worker examples.cart:worker``."""
    return durable.Worker(client, workflows=[shopping_cart], actions=[look_up_price], **options)


async def run_demo(url: str) -> dict[str, Any]:
    """Fill a cart through updates and queries while a worker runs in-process; print it all."""
    async with durable.connect(url) as client, worker(client):
        cart_id = f"cart-{uuid.uuid4().hex[:8]}"
        handle = await client.start(shopping_cart, "ann", id=cart_id)
        print(f"started {cart_id} on {url}")
        for product in ("tea", "cake"):
            total = await handle.update("add", product, idempotency_key=f"{cart_id}-{product}")
            print(f"added {product}: total {total}")
        for product in ("cake", "caviar"):
            try:
                await handle.update("add", product)
            except UpdateRejectedError as exc:
                print(f"rejected {product}: {exc.error_message} (nothing was recorded)")
        print(f"items: {await handle.query('items')}, total: {await handle.query('total')}")
        await handle.send("Checkout")
        result: dict[str, Any] = await handle.result(timeout=60)
        print(f"result: {result}")
        _demo.print_history(await handle.history())
        return result


def main() -> int:
    """``python -m examples.cart``."""
    return _demo.run(run_demo)


if __name__ == "__main__":
    raise SystemExit(main())
