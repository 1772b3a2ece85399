"""The instances a worker keeps between an execution's tasks ("sticky" execution)."""

from __future__ import annotations

from collections import OrderedDict

from .._replay import WorkflowInstance

__all__ = ["Cached", "InstanceCache"]


class Cached:
    """One cached instance, and how far it has seen its execution's history."""

    __slots__ = ("instance", "seq", "routed_until", "at", "time")

    def __init__(self, instance: WorkflowInstance, seq: int, time: float = 0.0) -> None:
        self.instance = instance
        self.seq = seq
        # Invariant: the last TaskCompleted time recorded; the next batch's is not earlier.
        self.time = time
        # Until when (monotonic) the dispatcher surely routes the execution's next tasks to
        # this worker (0.0: it was never asked to); the route is renewed after that.
        self.routed_until = 0.0
        self.at: str | None = None  # the suspended_at last recorded (None: not known here)


class InstanceCache:
    """Live instances by (tenant, workflow_id), least recently used evicted first ("sticky")."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[tuple[str, str], Cached] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def seq_of(self, tenant: str, workflow_id: str) -> int:
        """The seq up to which the cached instance has seen the history (0 if none is cached)."""
        entry = self._items.get((tenant, workflow_id))
        return 0 if entry is None else entry.seq

    def peek(self, key: tuple[str, str]) -> Cached | None:
        """The entry, left in place (a task that is to run it takes it)."""
        return self._items.get(key)

    def take(self, key: tuple[str, str]) -> Cached | None:
        """Remove and return the entry (a task owns its instance while it runs)."""
        return self._items.pop(key, None)

    def put(self, key: tuple[str, str], entry: Cached) -> list[tuple[str, str]]:
        """Keep an instance for the execution's next task; the keys of the routed instances
        this evicted (their sticky routes should go)."""
        if self.capacity <= 0 or entry.instance.done:
            entry.instance.close()
            return [key] if entry.routed_until and not entry.instance.done else []
        self._items[key] = entry
        evicted: list[tuple[str, str]] = []
        while len(self._items) > self.capacity:
            old_key, old = self._items.popitem(last=False)
            old.instance.close()
            if old.routed_until:
                evicted.append(old_key)
        return evicted

    def clear(self) -> None:
        """Drop every instance."""
        for entry in self._items.values():
            entry.instance.close()
        self._items.clear()
