"""Telemetry on for a benchmark process (``DURABLE_BENCH_TELEMETRY=1``, which the worker
processes inherit): every worker serves Prometheus metrics, and an OpenTelemetry SDK tracer
provider with the SDK's batch processor takes every span (exported to an exporter that drops
them: the cost measured is durable's and the SDK's, not a collector's network).
``DURABLE_BENCH_TELEMETRY=metrics`` or ``=traces`` turns on one of the two."""

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

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Dropping()))
    trace.set_tracer_provider(provider)
    _installed = True


def worker_options() -> dict[str, Any]:
    """``Worker(...)`` options for the benchmark's workers: metrics on a free port when on."""
    install()
    return {"metrics_port": 0} if enabled("metrics") else {}
