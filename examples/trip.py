"""Trip booking: the four things a workflow can do when a step fails.

* stop: a trip that cannot be priced raises ``durable.NonRetryable`` in ``quote``; nothing is
  booked yet, so the workflow just fails (an unhandled error ends it);
* retry: ``book_flight`` times out twice; its ``Retry`` policy tries again with backoff;
* compensate: hotel, car and flight are booked inside a ``durable.Saga``; when the charge is
  declined, the flight, the car and the hotel are cancelled, in that order, and the workflow
  fails with the declined charge;
* continue: the confirmation goes out on every channel with
  ``asyncio.gather(..., return_exceptions=True)``; a channel that is down is noted and the
  booking stands.

Run it in one process (SQLite file ``durable.db``, or ``$DURABLE_DB``)::

    python -m examples.trip

or with the CLI::

    durable worker examples.trip:worker &
    durable start TripBooking '"trip-1"' '"alice"' '"Lisbon"' 3 --id trip-1 --module examples.trip
    durable show trip-1
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import durable

from . import _demo

CHANNELS = ("email", "sms", "push")


@durable.action
async def quote(destination: str, nights: int) -> int:
    """The price in cents; a trip of no nights cannot be priced, and retrying will not help."""
    if nights < 1:
        raise durable.NonRetryable(f"cannot price a trip of {nights} nights to {destination}")
    return 12_000 * nights


@durable.action
async def reserve_hotel(trip_id: str, destination: str, nights: int) -> str:
    """Reserve the hotel; returns the reservation."""
    print(f"  [hotel] reserved {nights} nights in {destination} for {trip_id}", flush=True)
    return f"H-{trip_id}"


@durable.action
async def cancel_hotel(reservation: str) -> None:
    """Compensation of ``reserve_hotel``."""
    print(f"  [hotel] cancelled {reservation}", flush=True)


@durable.action
async def rent_car(trip_id: str, destination: str) -> str:
    """Rent the car; returns the rental."""
    print(f"  [car] rented in {destination} for {trip_id}", flush=True)
    return f"C-{trip_id}"


@durable.action
async def return_car(rental: str) -> None:
    """Compensation of ``rent_car``."""
    print(f"  [car] returned {rental}", flush=True)


@durable.action(retry=durable.Retry(attempts=5, initial=0.1, backoff=2.0, maximum=2.0))
async def book_flight(trip_id: str, destination: str) -> str:
    """Book the flight; the airline's API times out on the first two attempts."""
    attempt = durable.action_info().attempt
    if attempt <= 2:
        raise ConnectionError(f"airline API timed out (attempt {attempt})")
    print(f"  [flight] booked to {destination} for {trip_id} on attempt {attempt}", flush=True)
    return f"F-{trip_id}"


@durable.action
async def cancel_flight(ticket: str) -> None:
    """Compensation of ``book_flight``."""
    print(f"  [flight] cancelled {ticket}", flush=True)


@durable.action
async def charge(customer: str, amount_cents: int) -> str:
    """Charge the customer; bob's card is declined (no retry can fix that)."""
    if customer == "bob":
        raise durable.NonRetryable(f"card of {customer} declined for {amount_cents} cents")
    print(f"  [payment] charged {customer} {amount_cents} cents", flush=True)
    return f"ch-{uuid.uuid5(uuid.NAMESPACE_URL, durable.action_info().idempotency_key).hex[:8]}"


@durable.action(retry=durable.Retry(attempts=1))
async def notify(channel: str, customer: str, message: str) -> None:
    """Send a confirmation on one channel; the SMS gateway is down."""
    if channel == "sms":
        raise ConnectionError("SMS gateway down")
    print(f"  [{channel}] to {customer}: {message}", flush=True)


@durable.workflow(name="TripBooking", version="1")
async def book_trip(ctx: durable.Context, trip_id: str, customer: str, destination: str,
                    nights: int) -> dict[str, Any]:
    """Price, book hotel + car + flight, charge, then confirm on every channel."""
    ctx.set_state("pricing")
    price = await ctx.run(quote, destination, nights)  # stop: a NonRetryable ends the workflow
    ctx.set_state("booking")
    async with durable.Saga(ctx) as saga:  # compensate: undo what was booked if a step fails
        hotel = await ctx.run(reserve_hotel, trip_id, destination, nights)
        saga.add_compensation(cancel_hotel, hotel)
        car = await ctx.run(rent_car, trip_id, destination)
        saga.add_compensation(return_car, car)
        flight = await ctx.run(book_flight, trip_id, destination)  # retry: by its policy
        saga.add_compensation(cancel_flight, flight)
        receipt = await ctx.run(charge, customer, price)
    ctx.set_state("confirming")
    sent = await asyncio.gather(  # continue: a failed channel does not undo the trip
        *(ctx.run(notify, channel, customer, f"{trip_id} to {destination} is booked")
          for channel in CHANNELS), return_exceptions=True)
    missed = [channel for channel, outcome in zip(CHANNELS, sent, strict=True)
              if isinstance(outcome, Exception)]
    ctx.set_state("booked")
    return {"hotel": hotel, "car": car, "flight": flight, "receipt": receipt,
            "not_confirmed_on": missed}


ACTIONS = [quote, reserve_hotel, cancel_hotel, rent_car, return_car, book_flight, cancel_flight,
           charge, notify]


def worker(client: durable.Client, **options: Any) -> durable.Worker:
    """The worker for ``durable worker examples.trip:worker``."""
    return durable.Worker(client, workflows=[book_trip], actions=ACTIONS, **options)


TRIPS = [("alice", "Lisbon", 3), ("bob", "Oslo", 2), ("carol", "Rome", 0)]


async def run_demo(url: str) -> dict[str, str]:
    """Book three trips (one of each outcome) with a worker in-process; print how each ended."""
    outcomes: dict[str, str] = {}
    async with durable.connect(url) as client, worker(client):
        for customer, destination, nights in TRIPS:
            trip_id = f"trip-{customer}-{uuid.uuid4().hex[:6]}"
            print(f"{customer}: booking {trip_id} ({nights} nights in {destination})", flush=True)
            handle = await client.start(book_trip, trip_id, customer, destination, nights,
                                        id=trip_id)
            try:
                outcomes[customer] = f"booked: {await handle.result(timeout=60)}"
            except durable.errors.WorkflowFailedError as exc:
                outcomes[customer] = f"failed: {exc.error_message}"
            print(f"{customer}: {outcomes[customer]}", flush=True)
    return outcomes


def main() -> int:
    """``python -m examples.trip``."""
    return _demo.run(run_demo)


if __name__ == "__main__":
    raise SystemExit(main())
