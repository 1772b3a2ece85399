"""Telemetry on for a benchmark process (``DURABLE_BENCH_TELEMETRY=1``, which the worker
processes inherit): every worker serves Prometheus metrics, and an OpenTelemetry SDK tracer
provider with the SDK's batch processor takes every span (exported to an exporter that drops
them: the cost measured is durable's and the SDK's, not a collector's network).
``DURABLE_BENCH_TELEMETRY=metrics`` or ``=traces`` turns on one of the two;
``DURABLE_BENCH_SAMPLE=0.1`` samples a tenth of the executions (head sampling:
``ParentBased(TraceIdRatioBased(0.1))``, as a production fleet would), else every one is
traced (the SDK's default sampler)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

__all__ = ["enabled", "install", "worker_options"]

_installed = False


def enabled(part: str = "") -> bool:
    """Whether this benchmark runs with telemetry on (``part``: "metrics" or "traces")."""
    value = os.environ.get("DURABLE_BENCH_TELEMETRY", "0")
    return value == "1" or (value != "0" and part in ("", value))


def install() -> None:
    """Set the tracer provider of this process (once), if telemetry is on."""
    global _installed
    if not enabled("traces") or _installed:
        return
    from opentelemetry import trace
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor, SpanExporter, SpanExportResult,
    )

    class Dropping(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    ratio = os.environ.get("DURABLE_BENCH_SAMPLE")
    provider = TracerProvider() if ratio is None \
        else TracerProvider(sampler=ParentBased(TraceIdRatioBased(float(ratio))))
    provider.add_span_processor(BatchSpanProcessor(Dropping()))
    trace.set_tracer_provider(provider)
    _installed = True


def worker_options() -> dict[str, Any]:
    """``Worker(...)`` options for the benchmark's workers: metrics on a free port when on."""
    install()
    return {"metrics_port": 0} if enabled("metrics") else {}
