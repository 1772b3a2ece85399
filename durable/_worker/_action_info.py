"""``durable.action_info()``: what a running action attempt knows about itself, filled in by
the worker that runs it."""

from __future__ import annotations

import threading
from contextvars import ContextVar
from typing import NamedTuple

from ..errors import UsageError

__all__ = ["ActionInfo", "action_info"]


_NEVER_CANCELLED: threading.Event = threading.Event()


class ActionInfo(NamedTuple):
    """Facts about the running action attempt (``durable.action_info()``).

    ``idempotency_key`` is the same on every attempt of one call, and differs between calls:
    pass it to the services the action calls so a retried attempt does not repeat an effect.

    ``cancellation`` is set once the call's result is no longer wanted: the workflow cancelled
    it (it was cancelled itself, an ``asyncio.timeout`` expired, ...), the workflow ended, or
    another worker took the call over. The worker learns it at the attempt's next heartbeat
    (every third of its lease). An ``async def`` action is then cancelled at its current
    ``await``; a plain function keeps running and should check :attr:`cancelled` (or wait on
    ``cancellation``) and stop early. Whatever it returns is still recorded, and ignored.
    """

    idempotency_key: str
    action: str
    attempt: int
    workflow_id: str
    run_id: str
    tenant: str
    cancellation: threading.Event = _NEVER_CANCELLED

    @property
    def cancelled(self) -> bool:
        """Whether the call's result is no longer wanted (see :attr:`cancellation`)."""
        return self.cancellation.is_set()


_action_info: ContextVar[ActionInfo] = ContextVar("durable_action_info")


def action_info() -> ActionInfo:
    """Information about the action attempt running in this task or thread."""
    try:
        return _action_info.get()
    except LookupError:
        raise UsageError("durable.action_info() is only available inside a running action: call "
                         "it from the action's own code (its task or thread)") from None
