"""The current task's cancellation, as asyncio counts it.

Python 3.11's ``asyncio.wait_for`` loses a cancellation that arrives just as what it waits for
finishes (gh-86296, fixed in 3.12), and redis-py sends every command through it when a socket
timeout is set, as ours is: a worker cancelled during a Redis call would go on polling. The
task's ``cancelling()`` count still says it was asked to stop, so the loops that run until
cancelled look at it every round (``raise_if_cancelling``).
"""

from __future__ import annotations

import asyncio

__all__ = ["cancelling", "raise_if_cancelling"]


def cancelling() -> bool:
    """Whether the current task itself is being cancelled (not just something it awaited)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def raise_if_cancelling() -> None:
    """Raise ``CancelledError`` if the current task was asked to cancel, even where a library
    swallowed the cancellation."""
    if cancelling():
        raise asyncio.CancelledError
