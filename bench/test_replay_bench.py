"""pytest-benchmark suite of the replay engine (not part of the test suite).

    .venv/bin/python -m pytest bench/test_replay_bench.py --benchmark-columns=min,median,ops

Each benchmark decodes a stored history and replays it on a fresh instance; the bare
asyncio loop (one iteration per step) is the floor to compare against.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bench._shapes import SHAPES, record, steps_for
from bench.replay import loop_iterations, replay_blobs, replay_rows, stored_rows

SIZES = [1_000, 10_000]


@pytest.mark.parametrize("events", SIZES)
@pytest.mark.parametrize("shape", list(SHAPES))
def test_replay(benchmark: Any, shape: str, events: int) -> None:
    _, blobs = record(shape, steps_for(shape, events))
    benchmark.extra_info["steps"] = steps_for(shape, events)
    benchmark(replay_blobs, shape, blobs)


@pytest.mark.parametrize("checked", [False, True], ids=["decoded", "checked"])
@pytest.mark.parametrize("events", SIZES)
@pytest.mark.parametrize("shape", list(SHAPES))
def test_replay_from_stored_rows(benchmark: Any, shape: str, events: int, checked: bool) -> None:
    """The same, from rows with chained checksums: checked as a store's read checks them, or
    only decoded."""
    _, blobs = record(shape, steps_for(shape, events))
    rows = stored_rows(blobs)
    benchmark.extra_info["steps"] = steps_for(shape, events)
    benchmark(replay_rows, shape, rows, checked)


@pytest.mark.parametrize("steps", [3_333])
def test_floor_one_loop_iteration_per_step(benchmark: Any, steps: int) -> None:
    benchmark(loop_iterations, steps, asyncio.new_event_loop)
