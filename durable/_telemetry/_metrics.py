"""A worker's Prometheus metrics, in a registry of its own (several workers per process work),
served over HTTP by ``MetricsServer`` (``Worker(metrics_port=...)``, ``durable worker
--metrics-port``).

Names follow Prometheus' conventions: base units (``_seconds``), counters end in ``_total``.
Labels are names from the code (workflows, actions), never ids, so series stay few.

The counts live in plain dicts that the worker's event loop updates (a dict look-up and an
add per count: ``prometheus_client``'s own metrics take a lock and validate labels at every
one, several times what a step of a cached workflow costs); a scrape, on the HTTP server's
thread, copies each dict whole (one C call, atomic under the GIL) and renders the copy.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from itertools import accumulate
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Final

from ..errors import UsageError

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from prometheus_client.metrics_core import Metric

__all__ = ["MetricsServer", "WorkerMetrics"]

# Workflow tasks and action attempts: from a fraction of a millisecond (cached, inline) to
# minutes (a slow action); replays from microseconds to seconds (long histories).
_BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                   5.0, 10.0, 30.0, 60.0, 300.0)
HOWS: Final = ("inline", "eager", "claimed")
"""How an action attempt came to run: inside the workflow task that scheduled it (inline),
leased to this worker by that task's commit (eager), or claimed from the queue."""


def _client() -> None:
    try:
        import prometheus_client
    except ImportError as exc:
        raise UsageError("worker metrics need prometheus-client: pip install "
                         f"'durable[server]' (or prometheus-client) ({exc})") from None
    del prometheus_client


class Counter:
    """A counter by label values (``inc("Order", "committed")``)."""

    __slots__ = ("name", "doc", "labels", "values")

    def __init__(self, name: str, doc: str, labels: tuple[str, ...]) -> None:
        self.name, self.doc, self.labels = name, doc, labels
        self.values: dict[tuple[str, ...], float] = {}

    def inc(self, *key: str) -> None:
        """Add one to the series of these label values."""
        values = self.values
        values[key] = values.get(key, 0.0) + 1.0

    def zero(self, *key: str) -> None:
        """The series of these label values, at zero until counted."""
        self.values.setdefault(key, 0.0)

    def family(self) -> Metric:
        """The counter as ``prometheus_client`` renders it (``<name>_total``)."""
        from prometheus_client.core import CounterMetricFamily

        family = CounterMetricFamily(self.name, self.doc, labels=self.labels)
        for key, value in self.values.copy().items():
            family.add_metric(key, value)
        return family


class Histogram:
    """A histogram by label values (``observe(0.004, "Order")``): each series is the count of
    each bucket (not cumulative; the last one +Inf's) and then the sum."""

    __slots__ = ("name", "doc", "labels", "bounds", "series")

    def __init__(self, name: str, doc: str, labels: tuple[str, ...],
                 bounds: tuple[float, ...] = _BUCKETS) -> None:
        self.name, self.doc, self.labels, self.bounds = name, doc, labels, bounds
        self.series: dict[tuple[str, ...], list[float]] = {}

    def observe(self, value: float, *key: str) -> None:
        """Count ``value`` in the series of these label values."""
        counts = self.series.get(key) or self.zero(*key)
        counts[bisect_left(self.bounds, value)] += 1.0  # bounds are inclusive ("le")
        counts[-1] += value

    def zero(self, *key: str) -> list[float]:
        """The series of these label values (every count zero if it is new)."""
        return self.series.setdefault(key, [0.0] * (len(self.bounds) + 2))

    def family(self) -> Metric:
        """The histogram as ``prometheus_client`` renders it (``_bucket``, ``_count``,
        ``_sum``)."""
        from prometheus_client.core import HistogramMetricFamily

        family = HistogramMetricFamily(self.name, self.doc, labels=self.labels)
        les = [*map(repr, self.bounds), "+Inf"]  # as prometheus_client writes them
        for key, series in self.series.copy().items():
            counts = series[:]  # the last is the sum: zip leaves it out of the buckets
            family.add_metric(key, list(zip(les, accumulate(counts))), counts[-1])
        return family


class WorkerMetrics:
    """The worker's counters, gauges and histograms (see each one's help text)."""

    def __init__(self, cache_size: Callable[[], int], held: Callable[[], int]) -> None:
        _client()  # a clear error when it is missing
        from prometheus_client import CollectorRegistry

        self.workflow_task_seconds = Histogram(
            "durable_workflow_task_duration_seconds", "Duration of one workflow task, from its "
            "start on this worker to its commit (or release), replay and inline actions "
            "included.", ("workflow",))
        self.workflow_tasks = Counter(
            "durable_workflow_tasks", "Workflow tasks run, by how they ended: committed, "
            "released (failed; retried later), held (non-determinism, a damaged history) or "
            "refused (an action's outcome the commit could not settle with it: recorded alone).",
            ("workflow", "outcome"))
        self.replay_seconds = Histogram(
            "durable_replay_duration_seconds", "Time to rebuild an instance by replaying its "
            "history (a cache miss).", ("workflow",))
        self.cache_lookups = Counter(
            "durable_workflow_cache_lookups", "Workflow tasks that found their instance in the "
            "sticky cache (hit) or replayed it from history (miss).", ("result",))
        self.schedule_to_start = Histogram(
            "durable_schedule_to_start_seconds", "From when a task became due (an action's "
            "schedule or retry time, a workflow task's oldest input) to its start here.",
            ("kind",))
        self.action_seconds = Histogram(
            "durable_action_duration_seconds", "Duration of one action attempt.",
            ("action", "how"))
        self.action_attempts = Counter(
            "durable_action_attempts", "Action attempts started, by how they came to run here: "
            "inline (in the workflow task), eager (leased by its commit) or claimed.",
            ("action", "how"))
        self.action_failures = Counter(
            "durable_action_failures", "Action attempts that raised, timed out or were "
            "stopped.", ("action",))
        self._gauges = (
            ("durable_held_executions", "Executions whose last workflow task on this worker "
             "was held (non-determinism or a damaged history) and has not committed since.",
             held),
            ("durable_workflow_cache_size", "Live workflow instances in the sticky cache.",
             cache_size))
        for result in ("hit", "miss"):  # zeros from the first scrape: rates work at once
            self.cache_lookups.zero(result)
        for kind in ("workflow", "action"):
            self.schedule_to_start.zero(kind)
        self.registry = CollectorRegistry()
        self.registry.register(self)

    def collect(self) -> Iterator[Metric]:
        """Every metric, as ``prometheus_client``'s registry asks a collector for them."""
        from prometheus_client.core import GaugeMetricFamily

        for name, doc, read in self._gauges:
            yield GaugeMetricFamily(name, doc, value=read())
        for metric in vars(self).values():
            if isinstance(metric, (Counter, Histogram)):
                yield metric.family()


class MetricsServer:
    """``GET /metrics`` of one registry, on a thread of ``prometheus_client``'s own."""

    def __init__(self, metrics: WorkerMetrics, host: str, port: int) -> None:
        self.metrics = metrics
        self.host = host
        self.port = port  # the bound port once started (a port of 0 picks one)
        self._server: WSGIServer | None = None

    def start(self) -> None:
        """Bind and serve (an ``OSError`` if the port is taken)."""
        from prometheus_client import start_http_server

        self._server, _ = start_http_server(self.port, self.host, self.metrics.registry)
        self.port = self._server.server_port

    async def stop(self) -> None:
        """Stop serving and close the socket."""
        server, self._server = self._server, None
        if server is not None:
            await asyncio.to_thread(server.shutdown)
            server.server_close()
