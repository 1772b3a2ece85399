"""Queue limits hold across three worker processes (SQLite file; PostgreSQL + Redis), for the
attempts they claim and for those they run inline under held slots and tokens: the test reads
every attempt's start and end from the processes' shared log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from . import _limited
from .test_limits_processes import backend, run_fleet  # noqa: F401 - backend: the fixture

pytestmark = [pytest.mark.faults, pytest.mark.integration]


async def run_queue_fleet(tmp_path: Path, backend: tuple[str, dict[str, Any]],
                          actions: list[str], n: int, what: str) -> list[dict[str, Any]]:
    """``run_fleet`` of ``fan_out_two``: the effects of the actions logged as ``what``."""
    effects = await run_fleet(tmp_path, backend, _limited.fan_out_two, actions, n)
    return [e for e in effects if e["action"] == what]


async def test_a_queue_limit_of_five_is_never_exceeded(tmp_path: Path,
                                                       backend: tuple[str, dict[str, Any]]
                                                       ) -> None:
    effects = await run_queue_fleet(tmp_path, backend, ["QueueFiveQueued", "QueueFiveInline"], 40,
                                    "qfive")
    running = seen = 0
    for line in effects:  # in the order written, across the processes
        running += 1 if line["phase"] == "start" else -1
        seen = max(seen, running)
    assert sum(e["phase"] == "start" for e in effects) >= 120
    assert len({e["pid"] for e in effects}) >= 2  # the limit held across processes
    assert seen <= 5, f"{seen} attempts on the queue ran at once"
    assert seen >= 2  # the queue's attempts did run side by side
    print(f"most attempts on the queue seen running at once: {seen}")


async def test_a_queue_rate_of_fifty_per_second_holds(tmp_path: Path,
                                                      backend: tuple[str, dict[str, Any]]
                                                      ) -> None:
    effects = await run_queue_fleet(tmp_path, backend, ["QueueRateQueued", "QueueRateInline"], 170,
                                    "qrate")
    starts = sorted(e["time"] for e in effects)
    assert len(starts) >= 510
    span = starts[-1] - starts[0]
    # At most rate * t + burst (5) attempts start in any t seconds, plus the tokens taken
    # ahead for inline attempts (spent within 0.1 s: another 5): over the whole run (> 10 s),
    # and in every window of 1 s. Counted, not timed.
    assert span >= 10.0 * 0.9, span
    assert len(starts) <= 50 * span * 1.1, (len(starts), span)
    windows = [sum(1 for t in starts[i:] if t < first + 1.0) for i, first in enumerate(starts)]
    assert max(windows) <= 50 + 5 + 5, max(windows)
    print(f"{len(starts)} attempts in {span:.2f}s: {len(starts) / span:.1f}/s; "
          f"most starts in one second: {max(windows)}")
