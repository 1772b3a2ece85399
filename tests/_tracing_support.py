"""The SDK's in-memory span exporter for tests, on a tracer provider that is the global one
only while a test records (outside, no provider: other tests' executions record no trace);
the spans of each test start empty."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.util._once import Once
from opentelemetry.sdk.trace import ReadableSpan, Span, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

_EXPORTER = InMemorySpanExporter()


class _Switched(SimpleSpanProcessor):
    """Exports only while a test records (other tests leave no spans behind)."""

    on = False

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if self.on:
            super().on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        if self.on:
            super().on_end(span)


_PROCESSOR = _Switched(_EXPORTER)
_PROVIDER = TracerProvider()
_PROVIDER.add_span_processor(_PROCESSOR)


def _set_global(provider: TracerProvider | None) -> None:
    # OpenTelemetry sets its global provider once per process; its own tests reset these
    # globals the same way (opentelemetry.test.globals_test.reset_trace_globals).
    trace._TRACER_PROVIDER_SET_ONCE = Once()  # type: ignore[attr-defined]
    trace._TRACER_PROVIDER = None  # type: ignore[attr-defined]
    if provider is not None:
        trace.set_tracer_provider(provider)


@contextmanager
def recorded_spans() -> Iterator[InMemorySpanExporter]:
    """Within the block, finished spans are in the exporter (``get_finished_spans()``)."""
    _set_global(_PROVIDER)
    _EXPORTER.clear()
    _PROCESSOR.on = True
    try:
        yield _EXPORTER
    finally:
        _PROCESSOR.on = False
        _EXPORTER.clear()
        _set_global(None)


def hex_trace(span: ReadableSpan) -> str:
    """The span's trace id, as logs and ``traceparent`` show it."""
    context = span.get_span_context()
    assert context is not None
    return f"{context.trace_id:032x}"
