"""The server's Prometheus metrics, in a registry of its own (several servers per process work)."""

from __future__ import annotations

from collections import Counter as Counter_
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from durable._queues import DEFAULT_QUEUE, unroute
from durable._stores._backlog import Backlog

__all__ = ["LOOPS", "Metrics"]

LOOPS = ("timers", "outbox", "schedules", "retention")

# Loop iterations are one or two store round trips and a publish: milliseconds, seconds when sick.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Counters, a gauge and a histogram; ``exposition()`` renders them for ``GET /metrics``.

    ``up`` is called at every scrape: 1.0 when the server is healthy, else 0.0.
    """

    def __init__(self, up: Callable[[], float]) -> None:
        self.registry = CollectorRegistry()
        self.timers_fired = Counter(
            "durable_timers_fired", "Timers this server recorded as fired (TimerFired appended).",
            registry=self.registry)
        self.tasks_redispatched = Counter(
            "durable_tasks_redispatched", "Task hints this server re-dispatched from the outbox "
            "(lost hints, expired leases, due retries and releases).", registry=self.registry)
        self.schedule_runs = Counter(
            "durable_schedule_runs", "Runs this server's schedule passes started or cancelled "
            "(client.schedule).", registry=self.registry)
        self.executions_deleted = Counter(
            "durable_executions_deleted", "Closed executions this server deleted, with every row "
            "of theirs, once past their retention.", registry=self.registry)
        self.errors = Counter(
            "durable_server_errors", "Failed loop iterations (store or dispatcher unavailable).",
            ["loop"], registry=self.registry)
        self.leases_reclaimed = Counter(
            "durable_leases_reclaimed", "Tasks this server released from workers that died "
            "(their leases reclaimed before they ran out).", registry=self.registry)
        self.queue_depth = Gauge(
            "durable_queue_depth", "Ready tasks no worker holds, by kind (workflow or action) "
            "and task queue (read from the store at each scrape).", ["kind", "queue"],
            registry=self.registry)
        self.timers_due = Gauge(
            "durable_timers_due", "Timers due on the store's clock that have not fired yet "
            "(read from the store at each scrape).", registry=self.registry)
        self.up = Gauge("durable_server_up", "1 while the server's store round trips succeed.",
                        registry=self.registry)
        self.up.set_function(up)
        self.loop_seconds = Histogram(
            "durable_server_loop_duration_seconds", "Duration of one iteration of a server loop.",
            ["loop"], buckets=_BUCKETS, registry=self.registry)
        for loop in LOOPS:  # export zeros from the start, so rates work from the first scrape
            self.errors.labels(loop=loop)
            self.loop_seconds.labels(loop=loop)

    def backlog(self, backlog: Backlog) -> None:
        """Set the queue-depth and timers-due gauges from the store's ``backlog``."""
        depth: Counter_[tuple[str, str]] = Counter_()
        for ready in backlog.ready:
            depth[ready.kind, unroute(ready.route)[1]] += ready.tasks
        self.queue_depth.clear()
        for kind in ("workflow", "action"):  # the default queue always shows, at 0 if empty
            depth[kind, DEFAULT_QUEUE] += 0
        for (kind, queue), count in depth.items():
            self.queue_depth.labels(kind=kind, queue=queue).set(count)
        self.timers_due.set(backlog.timers_due)

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format (``CONTENT_TYPE_LATEST``)."""
        return generate_latest(self.registry)
