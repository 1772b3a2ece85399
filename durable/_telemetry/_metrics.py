"""A worker's Prometheus metrics, in a registry of its own (several workers per process work),
served over HTTP by ``MetricsServer`` (``Worker(metrics_port=...)``, ``durable worker
--metrics-port``).

Names follow Prometheus' conventions: base units (``_seconds``), counters end in ``_total``
(added by ``prometheus_client``). Labels are names from the code (workflows, actions), never
ids, so series stay few.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from ..errors import UsageError

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

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


class WorkerMetrics:
    """The worker's counters, gauges and histograms (see each one's help text)."""

    def __init__(self, cache_size: Callable[[], int], held: Callable[[], int]) -> None:
        _client()  # a clear error when it is missing
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        r = self.registry = CollectorRegistry()
        self.workflow_task_seconds = Histogram(
            "durable_workflow_task_duration_seconds", "Duration of one workflow task, from its "
            "start on this worker to its commit (or release), replay and inline actions "
            "included.", ["workflow"], buckets=_BUCKETS, registry=r)
        self.workflow_tasks = Counter(
            "durable_workflow_tasks", "Workflow tasks run, by how they ended: committed, "
            "released (failed; retried later), held (non-determinism, a damaged history) or "
            "refused (an action's outcome the commit could not settle with it: recorded alone).",
            ["workflow", "outcome"], registry=r)
        self.replay_seconds = Histogram(
            "durable_replay_duration_seconds", "Time to rebuild an instance by replaying its "
            "history (a cache miss).", ["workflow"], buckets=_BUCKETS, registry=r)
        self.cache_lookups = Counter(
            "durable_workflow_cache_lookups", "Workflow tasks that found their instance in the "
            "sticky cache (hit) or replayed it from history (miss).", ["result"], registry=r)
        self.schedule_to_start = Histogram(
            "durable_schedule_to_start_seconds", "From when a task became due (an action's "
            "schedule or retry time, a workflow task's oldest input) to its start here.",
            ["kind"], buckets=_BUCKETS, registry=r)
        self.action_seconds = Histogram(
            "durable_action_duration_seconds", "Duration of one action attempt.",
            ["action", "how"], buckets=_BUCKETS, registry=r)
        self.action_attempts = Counter(
            "durable_action_attempts", "Action attempts started, by how they came to run here: "
            "inline (in the workflow task), eager (leased by its commit) or claimed.",
            ["action", "how"], registry=r)
        self.action_failures = Counter(
            "durable_action_failures", "Action attempts that raised, timed out or were "
            "stopped.", ["action"], registry=r)
        Gauge("durable_held_executions", "Executions whose last workflow task on this worker "
              "was held (non-determinism or a damaged history) and has not committed since.",
              registry=r).set_function(held)
        Gauge("durable_workflow_cache_size", "Live workflow instances in the sticky cache.",
              registry=r).set_function(cache_size)
        for result in ("hit", "miss"):  # zeros from the first scrape: rates work at once
            self.cache_lookups.labels(result=result)
        for kind in ("workflow", "action"):
            self.schedule_to_start.labels(kind=kind)


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
