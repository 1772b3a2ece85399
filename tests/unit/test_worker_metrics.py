"""A worker's metrics read by a scrape (on the metrics server's thread) while the worker's
event loop counts: nothing raises, nothing is lost."""

from __future__ import annotations

import sys
import threading

from prometheus_client import generate_latest

from durable._telemetry._metrics import WorkerMetrics


def test_a_scrape_reads_while_the_loop_counts() -> None:
    metrics = WorkerMetrics(lambda: 0, lambda: 0)
    errors: list[BaseException] = []
    stop = threading.Event()

    def scrape() -> None:
        while not stop.is_set():
            try:
                metrics.action_attempts.family()
                metrics.action_seconds.family()
            except BaseException as exc:  # noqa: BLE001 - the test's finding
                errors.append(exc)
                return

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch as often as they can
    scraper = threading.Thread(target=scrape)
    scraper.start()
    try:
        for i in range(5_000):  # a new series each time: every dict grows under the scrape
            metrics.action_attempts.inc(f"a{i}", "eager")
            metrics.action_seconds.observe(0.001 * (i % 7), f"a{i}", "eager")
    finally:
        stop.set()
        scraper.join()
        sys.setswitchinterval(interval)
    assert not errors
    text = generate_latest(metrics.registry).decode()
    assert 'durable_action_attempts_total{action="a4999",how="eager"} 1.0' in text
    assert 'durable_action_duration_seconds_count{action="a4999",how="eager"} 1.0' in text
    assert 'durable_workflow_cache_lookups_total{result="miss"} 0.0' in text
