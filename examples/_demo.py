"""What the examples share: printing a history and running a demo from the command line."""

from __future__ import annotations

import asyncio
import os
from typing import Any, Callable, Coroutine

import msgspec

import durable


def print_history(events: list[durable.Event]) -> None:
    """One line per event: seq, seconds since the start, type and fields."""
    print("history:")
    for event in events:
        fields = {k: v for k, v in msgspec.structs.asdict(event).items() if k not in ("seq", "time")}
        line = f"  {event.seq:>3} +{event.time - events[0].time:6.3f}s {type(event).__name__:<17}"
        print(f"{line} {fields}" if fields else line.rstrip())


def run(demo: Callable[[str], Coroutine[Any, Any, Any]]) -> int:
    """Run ``demo(url)`` on ``$DURABLE_DB`` (default: the embedded ``sqlite:///durable.db``)."""
    asyncio.run(demo(os.environ.get("DURABLE_DB", "sqlite:///durable.db")))
    return 0
