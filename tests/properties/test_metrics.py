"""Properties of a worker's metrics: whatever is counted and observed, a scrape reads the same
samples as ``prometheus_client``'s own counters and histograms given the same calls (the
oracle), bucket bounds included."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from prometheus_client import Counter as PromCounter
from prometheus_client import Histogram as PromHistogram

from durable._telemetry._metrics import _BUCKETS, Counter, Histogram

LABELS = st.sampled_from(["Order", "Pay", "e-mail", 'quo"te'])
# Values on the bucket bounds, next to them, and anywhere from zero to beyond the last one.
VALUES = st.one_of(st.sampled_from(_BUCKETS), st.floats(0.0, 1000.0),
                   st.sampled_from(_BUCKETS).map(lambda b: b * (1 + 1e-12)))


def _samples(metric: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    registry.register(metric)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in registry.collect() for s in family.samples
            if not s.name.endswith("_created")}


class _One:
    """A collector of one of durable's metrics."""

    def __init__(self, metric: Counter | Histogram) -> None:
        self.metric = metric

    def collect(self) -> Any:
        yield self.metric.family()


@given(st.lists(st.tuples(LABELS, VALUES), max_size=60))
@example([(label, bound) for label in ("Order", "Pay") for bound in _BUCKETS])
def test_a_histogram_reads_as_prometheus_clients(observations: list[tuple[str, float]]) -> None:
    ours = Histogram("durable_x_seconds", "X.", ("workflow",))
    oracle = PromHistogram("durable_x_seconds", "X.", ["workflow"], buckets=_BUCKETS,
                           registry=None)
    for label, value in observations:
        ours.observe(value, label)
        oracle.labels(label).observe(value)
    got, expected = _samples(_One(ours)), _samples(oracle)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == value or abs(got[key] - value) <= 1e-9 * abs(value), key


@given(st.lists(st.tuples(LABELS, st.sampled_from(["committed", "held"])), max_size=60))
def test_a_counter_reads_as_prometheus_clients(calls: list[tuple[str, str]]) -> None:
    ours = Counter("durable_x", "X.", ("workflow", "outcome"))
    oracle = PromCounter("durable_x", "X.", ["workflow", "outcome"], registry=None)
    for workflow, outcome in calls:
        ours.inc(workflow, outcome)
        oracle.labels(workflow, outcome).inc()
    assert _samples(_One(ours)) == _samples(oracle)
