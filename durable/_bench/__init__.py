"""``durable bench``: replay speed measured on this machine, next to the floors of Python and
asyncio measured in the same run (the repository's ``bench/`` adds peers and end to end).

This module is light: the CLI builds its options from it without importing the shapes (whose
workflows would join the registry of every ``durable`` command).
"""

from __future__ import annotations

import argparse

__all__ = ["SHAPE_NAMES", "add_arguments"]

SHAPE_NAMES = ("sequential", "timers", "events", "fanout")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's options (``durable bench`` and ``bench/replay.py``)."""
    parser.add_argument("--events", type=int, nargs="+", default=[10, 1000, 10_000, 100_000],
                        help="history sizes, in events (default 10 1000 10000 100000)")
    parser.add_argument("--shapes", nargs="+", default=list(SHAPE_NAMES), choices=SHAPE_NAMES)
    parser.add_argument("--repeat", type=int, default=5, help="runs of each; the best counts")
    parser.add_argument("--verify", action="store_true",
                        help="also replay each history from stored rows with their checksums "
                        "checked, next to the same rows read without (the cost of integrity)")
