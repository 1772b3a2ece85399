"""Stores: where executions, histories and work live. ``open_store(url)`` picks one by URL."""

from __future__ import annotations

from ._base import (
    TERMINAL_STATUSES, ActionTask, ExecutionRecord, ExecutionUpdate, Store, TaskRef, TimerRecord,
    Wakeup, WorkflowTask, action_ref, workflow_ref,
)

__all__ = [
    "TERMINAL_STATUSES",
    "ActionTask",
    "ExecutionRecord",
    "ExecutionUpdate",
    "Store",
    "TaskRef",
    "TimerRecord",
    "Wakeup",
    "WorkflowTask",
    "action_ref",
    "open_store",
    "workflow_ref",
]


async def open_store(url: str) -> Store:
    """Open the store ``url`` names: ``memory://``, ``sqlite:///path.db``, ``postgresql://…``."""
    scheme = url.split(":", 1)[0].lower()
    if scheme == "memory":
        from ._memory import MemoryStore

        return MemoryStore(url)
    if scheme == "sqlite":
        from .sqlite import SQLiteStore

        return await SQLiteStore.open(url)
    raise ValueError(f"unsupported store URL {url!r}: use memory://, sqlite:///path.db "
                     "or sqlite:////absolute/path.db")
