"""The OpenTelemetry side of ``_tracing``: imported only when ``opentelemetry-api`` is
installed (``pip install 'durable[otel]'``); ``_tracing`` is what the rest of durable calls.

Spans go to the global tracer provider; until the application sets one (the SDK's), every
call here returns at once, having made nothing (``enabled()`` is False).

Head sampling (the SDK's ``ParentBased`` sampler, its default): the child of a span that was
not sampled is not sampled either, and the SDK makes it a ``NonRecordingSpan`` with a new span
id. Where the provider's sampler is one that always drops those, durable makes that span
itself (a few µs against the SDK's ~6): most of a sampled fleet's spans are such children.
"""

from __future__ import annotations

import contextvars
import os
from typing import Any, Final

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import (
    INVALID_SPAN_CONTEXT, NonRecordingSpan, ProxyTracerProvider, Span, SpanContext, SpanKind,
    Status, StatusCode, TraceFlags,
)

__all__ = ["OtelTracing", "Span"]

_GLOBAL: Final = hasattr(trace, "_TRACER_PROVIDER") \
    and "OTEL_PYTHON_TRACER_PROVIDER" not in os.environ
KINDS: Final = {"internal": SpanKind.INTERNAL, "producer": SpanKind.PRODUCER,
                "consumer": SpanKind.CONSUMER, "client": SpanKind.CLIENT}


class OtelTracing:
    """Spans of durable's tracer (instrumentation scope ``durable``)."""

    def __init__(self) -> None:
        self._tracer = trace.get_tracer("durable")  # follows the provider set later
        self._provider: object = None  # the provider ``_on`` and ``_ids`` were found for
        self._on = False
        # its span id generator, if its sampler drops unsampled children (``start`` runs after
        # an ``enabled()`` that found the provider, as every caller asks that first)
        self._ids: Any = None

    def enabled(self) -> bool:
        """Whether the application installed a tracer provider (else nothing is traced)."""
        # Asked at every task and attempt: the API's global, read directly, unless a provider
        # may come from the environment (``get_tracer_provider`` reads os.environ each call).
        provider = getattr(trace, "_TRACER_PROVIDER") if _GLOBAL else trace.get_tracer_provider()
        if provider is not self._provider:
            self._provider = provider
            self._on = provider is not None \
                and not isinstance(provider, (ProxyTracerProvider, trace.NoOpTracerProvider))
            self._ids = _ids_if_dropping(provider) if self._on else None
        return self._on

    def start(self, name: str, parent: str | None, attributes: dict[str, Any], *,
              kind: str = "internal", start_ns: int | None = None,
              nested: bool = True) -> Span:
        """A span child of the current span if there is one and ``nested``, else of the
        remote span that ``parent`` (a ``traceparent``) names, else a new trace's root."""
        context = None
        current = trace.get_current_span().get_span_context() if nested else INVALID_SPAN_CONTEXT
        if not current.is_valid and (parent is not None or not nested):
            context, current = _remote(parent) if parent is not None else _ROOT
        if self._ids is not None and current.is_valid and not current.trace_flags.sampled:
            return NonRecordingSpan(SpanContext(  # what the provider's sampler would make
                current.trace_id, self._ids.generate_span_id(), is_remote=False,
                trace_flags=TraceFlags(0), trace_state=current.trace_state))
        return self._tracer.start_span(name, context, KINDS[kind], attributes,
                                       start_time=start_ns)

    @staticmethod
    def header(span: Span) -> str | None:
        """The span's W3C ``traceparent`` (None for an invalid span)."""
        sc = span.get_span_context()
        if not sc.is_valid:
            return None
        return f"00-{sc.trace_id:032x}-{sc.span_id:016x}-{int(sc.trace_flags):02x}"

    def current_header(self) -> str | None:
        """The current span's ``traceparent``."""
        return self.header(trace.get_current_span())

    @staticmethod
    def current_trace_id() -> str | None:
        """The current span's trace id in hex (None: no span)."""
        sc = trace.get_current_span().get_span_context()
        return f"{sc.trace_id:032x}" if sc.is_valid else None

    @staticmethod
    def attach(span: Span) -> object:
        """Make ``span`` current in this context; the token ``detach`` takes."""
        return otel_context.attach(trace.set_span_in_context(span))

    @staticmethod
    def detach(token: object) -> None:
        """Undo ``attach``."""
        otel_context.detach(token)  # type: ignore[arg-type]

    @staticmethod
    def attach_in(context: contextvars.Context, span: Span) -> None:
        """Make ``span`` current in ``context`` (a task's or thread's own copy)."""
        context.run(otel_context.attach, trace.set_span_in_context(span))

    @staticmethod
    def end(span: Span, error: BaseException | None = None, end_ns: int | None = None) -> None:
        """End ``span``; with ``error``, recorded as failed."""
        if error is not None:
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        span.end(end_ns)


def _ids_if_dropping(provider: object) -> Any:
    """The span id generator of ``provider`` if its sampler is the SDK's ``ParentBased`` and
    drops the children of unsampled parents, local and remote (its default); else None."""
    try:
        from opentelemetry.sdk.trace.sampling import Decision, ParentBased
    except ImportError:  # a provider of another SDK: it samples every span itself
        return None
    sampler, ids = getattr(provider, "sampler", None), getattr(provider, "id_generator", None)
    if not isinstance(sampler, ParentBased) or ids is None:
        return None
    for remote in (True, False):
        unsampled = SpanContext(1, 1, is_remote=remote, trace_flags=TraceFlags(0))
        context = trace.set_span_in_context(NonRecordingSpan(unsampled))
        if sampler.should_sample(context, 1, "durable").decision is not Decision.DROP:
            return None
    return ids


_Parent = tuple[otel_context.Context, SpanContext]
_ROOT: Final[_Parent] = (otel_context.Context(), INVALID_SPAN_CONTEXT)  # no parent: a new trace
_REMOTES: dict[str, _Parent] = {}  # parsed lately (a few per execution)
_REMOTES_KEPT: Final = 4096


def _remote(traceparent: str) -> _Parent:
    """The context of the remote span a ``traceparent`` names, and that span's context (a
    new trace's root where it is malformed)."""
    try:
        return _REMOTES[traceparent]
    except KeyError:
        pass
    if len(_REMOTES) >= _REMOTES_KEPT:
        _REMOTES.clear()
    found = _REMOTES[traceparent] = _parsed(traceparent)
    return found


def _parsed(traceparent: str) -> _Parent:
    parts = traceparent.split("-")
    if len(parts) != 4 or len(parts[1]) != 32 or len(parts[2]) != 16:
        return _ROOT
    try:
        sc = SpanContext(int(parts[1], 16), int(parts[2], 16), is_remote=True,
                         trace_flags=TraceFlags(int(parts[3], 16)))
    except ValueError:
        return _ROOT
    return (trace.set_span_in_context(NonRecordingSpan(sc)), sc) if sc.is_valid else _ROOT
