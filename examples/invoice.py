"""Invoice approval: wait for people, call services, sleep durably.

States: draft -> submitted -> approved | rejected | expired.

Run the whole thing in one process (SQLite file ``durable.db``, or ``$DURABLE_DB``)::

    python -m examples.invoice

or piece by piece with the CLI::

    durable worker examples.invoice:worker &
    durable start InvoiceApproval '"inv-1"' 500 --id inv-1 --module examples.invoice
    durable send inv-1 Submit '{"by": "u1"}'
    durable send inv-1 Approve '{"by": "boss"}'
    durable show inv-1
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import durable

from . import _demo

# Stands in for a mail service that deduplicates by idempotency key.
OUTBOX: dict[str, tuple[str, str]] = {}


@durable.action(retry=durable.Retry(attempts=5, initial=0.5, backoff=2.0, maximum=10.0),
                timeout=30.0)
async def send_email(to: str, body: str) -> bool:
    """Send one email; a retried attempt reuses the key, so the mail goes out once."""
    key = durable.action_info().idempotency_key  # same on every attempt of this call
    if key not in OUTBOX:
        OUTBOX[key] = (to, body)
        print(f"  [email] to {to}: {body}", flush=True)
    return True


@durable.action
def log_event(message: str) -> None:
    """A plain (thread-run) action, called by its registered name."""
    print(f"  [log] {message}", flush=True)


@durable.workflow(name="InvoiceApproval", version="1")
async def invoice_approval(ctx: durable.Context, invoice_id: str, amount: int,
                           pay_delay: float = 1.0, decision_timeout: float = 3 * 86400) -> str:
    """Submit, decide, then pay after ``pay_delay`` seconds; returns the final state."""
    ctx.set_state("draft")
    submitted = await ctx.wait_for("Submit")  # an external event
    payload = submitted.payload if submitted is not None else None
    by = payload.get("by", "someone") if isinstance(payload, dict) else "someone"  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    await ctx.run(send_email, "manager@example.com", f"{invoice_id} ({amount}) submitted by {by}")
    await ctx.actions.log_event(message=f"{invoice_id} submitted")  # by registered name
    ctx.set_state("submitted")
    decision = await ctx.wait_for("Approve", "Reject", timeout=timedelta(seconds=decision_timeout))
    if decision is None:  # timed out
        ctx.set_state("expired")
        return "expired"
    outcome = "approved" if decision.name == "Approve" else "rejected"
    await asyncio.gather(  # parallel actions; the order they are recorded in is deterministic
        ctx.run(send_email, "accounting@example.com", f"{invoice_id} {outcome}"),
        ctx.run(send_email, "requester@example.com", f"{invoice_id} {outcome}"),
    )
    if outcome == "approved":
        await ctx.sleep(pay_delay)  # a durable timer: survives restarts of every process
        await ctx.actions.log_event(message=f"{invoice_id} paid")
    ctx.set_state(outcome)
    return outcome


def worker(client: durable.Client, **options: Any) -> durable.Worker:
    """The worker for ``durable worker examples.invoice:worker``."""
    return durable.Worker(client, workflows=[invoice_approval],
                          actions=[send_email, log_event], **options)


async def run_demo(url: str) -> str:
    """Start one invoice, drive it with events while a worker runs in-process; print it all."""
    async with durable.connect(url) as client, worker(client):
        invoice_id = f"inv-{uuid.uuid4().hex[:8]}"
        handle = await client.start(invoice_approval, invoice_id, 500, id=invoice_id)
        print(f"started {invoice_id} on {url}")
        await handle.send("Submit", {"by": "u1"})
        await handle.send("Approve", {"by": "boss"}, idempotency_key=f"{invoice_id}-approve")
        result = await handle.result(timeout=60)
        print(f"result: {result}")
        _demo.print_history(await handle.history())
        if not url.startswith("memory:"):
            print(f"(see it again with: durable --db {url} show {invoice_id})")
        return result


def main() -> int:
    """``python -m examples.invoice``."""
    return _demo.run(run_demo)


if __name__ == "__main__":
    raise SystemExit(main())
