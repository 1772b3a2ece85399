"""The worker: one TaskGroup that runs workflow tasks, action tasks and due timers."""

from ._worker import Worker

__all__ = ["Worker"]
