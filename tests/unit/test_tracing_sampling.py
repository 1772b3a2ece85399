"""Durable's spans under the provider's sampler: where it always drops the children of an
unsampled parent (``ParentBased``'s default), durable makes those children itself, as the
SDK would make them; any other sampler decides every span itself."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, Sampler, TraceIdRatioBased
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

from _tracing_support import _set_global
from durable._telemetry._tracing import TRACING

UNSAMPLED = f"00-{0x5EED:032x}-{0xC0FFEE:016x}-00"
SAMPLED = f"00-{0xBEEF:032x}-{0xCAFE:016x}-01"
KEEPS_UNSAMPLED_CHILDREN = ParentBased(ALWAYS_ON, remote_parent_not_sampled=ALWAYS_ON)


def _unsampled(state: TraceState | None = None, remote: bool = True) -> NonRecordingSpan:
    return NonRecordingSpan(SpanContext(0x5EED, 0xC0FFEE, is_remote=remote,
                                        trace_flags=TraceFlags(0), trace_state=state))


@pytest.fixture
def exporter(request: pytest.FixtureRequest) -> Iterator[InMemorySpanExporter]:
    sampler: Sampler = request.param
    provider = TracerProvider(sampler=sampler)
    spans = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    assert TRACING is not None
    _set_global(provider)
    # The API's tracer stays with the first provider a process sets (a process sets one);
    # each test here has its own, so durable's tracer is taken from it, and given back after.
    proxy, TRACING._tracer = TRACING._tracer, provider.get_tracer("durable")
    try:
        assert TRACING.enabled()
        yield spans
    finally:
        TRACING._tracer = proxy
        _set_global(None)


@pytest.mark.parametrize("exporter", [ParentBased(TraceIdRatioBased(0.5))], indirect=True)
def test_a_child_of_an_unsampled_span_is_made_as_the_sdk_makes_it(
        exporter: InMemorySpanExporter) -> None:
    assert TRACING is not None
    sdk = TRACING._tracer.start_span("sdk", trace.set_span_in_context(_unsampled()))
    ours = TRACING.start("durable.workflow_task X", UNSAMPLED, {"k": "v"}, nested=False)
    for span in (sdk, ours):
        assert isinstance(span, NonRecordingSpan)
        context = span.get_span_context()
        assert (context.trace_id, context.trace_flags.sampled, context.is_remote) == (
            0x5EED, False, False)
        assert context.span_id not in (0, 0xC0FFEE)
    assert (TRACING.header(ours) or "").endswith("-00")  # its children's parent: unsampled
    with trace.use_span(ours):  # a child of an unsampled local span: unsampled too
        nested = TRACING.start("durable.timer_fired 3", None, {})
    assert not nested.is_recording() and nested.get_span_context().trace_id == 0x5EED
    TRACING.end(TRACING.start("durable.action a", SAMPLED, {}, nested=False))
    assert [s.name for s in exporter.get_finished_spans()] == ["durable.action a"]


@pytest.mark.parametrize("exporter", [KEEPS_UNSAMPLED_CHILDREN], indirect=True)
def test_a_sampler_that_keeps_unsampled_children_decides_them(
        exporter: InMemorySpanExporter) -> None:
    assert TRACING is not None
    TRACING.end(TRACING.start("durable.workflow_task X", UNSAMPLED, {}, nested=False))
    assert [s.name for s in exporter.get_finished_spans()] == ["durable.workflow_task X"]


@pytest.mark.parametrize("exporter", [ParentBased(ALWAYS_ON)], indirect=True)
def test_the_parents_trace_state_goes_to_its_unsampled_child(
        exporter: InMemorySpanExporter) -> None:
    assert TRACING is not None
    state = TraceState([("vendor", "x")])
    with trace.use_span(_unsampled(state, remote=False)):
        child = TRACING.start("durable.start_child C", None, {})
    assert child.get_span_context().trace_state == state
    sdk = TRACING._tracer.start_span("sdk", trace.set_span_in_context(_unsampled(state)))
    assert sdk.get_span_context().trace_state == state
    assert not exporter.get_finished_spans()
