"""A traced worker process for ``test_trace_kill``: ``python -m tests.faults._traced_worker
DB_URL SPANS DIR``. Its spans go, one JSON object a line, to the file SPANS as each ends (the
SDK's simple processor: a SIGKILL loses only the spans still open)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

import durable

DIRECTORY = Path(".")


def line(span: ReadableSpan) -> str:
    """The span as the test reads it."""
    context, parent = span.get_span_context(), span.parent
    return json.dumps({"name": span.name, "trace_id": f"{context.trace_id:032x}",
                       "span_id": f"{context.span_id:016x}",
                       "parent": None if parent is None else f"{parent.span_id:016x}",
                       "attributes": dict(span.attributes or {})}) + "\n"


@durable.action(inline=False)
async def traced_step(label: str) -> str:
    """Marks that it runs, then waits for the gate file; the span it makes is its child."""
    (DIRECTORY / f"running-{durable.action_info().attempt}").touch()
    while not (DIRECTORY / "gate.open").exists():
        await asyncio.sleep(0.02)
    with trace.get_tracer("app").start_as_current_span("inside the action"):
        return label.upper()


@durable.workflow(name="TracedFlow")
async def traced_flow(ctx: durable.Context, label: str) -> str:
    """One slow action, one timer."""
    value = await ctx.run(traced_step, label)
    await ctx.sleep(0.05)
    return value


async def main(url: str) -> None:
    async with durable.connect(url) as client:
        worker: Any = durable.Worker(client, workflows=[traced_flow], actions=[traced_step],
                                     lease=1.0, poll_interval=0.05)
        await worker.run()


if __name__ == "__main__":
    url, spans, DIRECTORY = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    provider = TracerProvider()
    out = open(spans, "a", buffering=1)  # noqa: SIM115 - open for the process's life
    provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=out, formatter=line)))
    trace.set_tracer_provider(provider)
    asyncio.run(main(url))
