"""``MemoryStore``: the memory store's roles joined into one ``Store``."""

from __future__ import annotations

from ._executions import MemoryExecutions
from ._heartbeats import MemoryHeartbeats
from ._hosts import MemoryHosts
from ._limited import MemoryLimited
from ._requests import MemoryRequests
from ._retention import MemoryRetention
from ._schedules import MemorySchedules
from ._snapshots import MemorySnapshots
from ._tasks import MemoryTasks
from ._timers import MemoryTimers
from ._workers import MemoryWorkers

__all__ = ["MemoryStore"]


class MemoryStore(MemoryExecutions, MemoryLimited, MemoryTasks, MemoryTimers, MemoryRequests,
                  MemorySchedules, MemorySnapshots, MemoryWorkers, MemoryRetention, MemoryHeartbeats,
                  MemoryHosts):
    """Everything in dicts; single event loop, no persistence (see the package)."""
