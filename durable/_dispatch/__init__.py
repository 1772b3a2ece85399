"""Dispatch: in-process polling for the embedded stores, Redis Streams for production."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._base import Claim, ClaimSpec, Dispatcher
from .local import LocalDispatcher

if TYPE_CHECKING:
    from .redis_streams import RedisDispatcher

__all__ = ["Claim", "ClaimSpec", "Dispatcher", "LocalDispatcher", "RedisDispatcher"]


def __getattr__(name: str) -> Any:
    # Imported on first use: redis.asyncio takes longer to import than all of durable.
    if name == "RedisDispatcher":
        from .redis_streams import RedisDispatcher

        return RedisDispatcher
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
