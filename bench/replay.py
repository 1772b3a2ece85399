"""Replay throughput by workflow shape and history size, next to the floors, in one run.

    .venv/bin/python bench/replay.py [--events 10 1000 10000 100000] [--shapes ...] [--repeat 5]
                                     [--verify]

The same as ``durable bench``, whose code ships with the package (``durable/_bench/``).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from durable._bench._replay import (  # noqa: E402
    best, loop_iterations, main, replay_blobs, replay_rows, stored_rows,
)

__all__ = ["best", "loop_iterations", "main", "replay_blobs", "replay_rows", "stored_rows"]

if __name__ == "__main__":
    main()
