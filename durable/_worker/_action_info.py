"""``durable.action_info()``: what a running action attempt knows about itself, filled in by
the worker that runs it, and ``heartbeat()``, how a long attempt reports its progress."""

from __future__ import annotations

import asyncio
import threading
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Callable, Final

import msgspec

from .._payloads import check_size, dump_value
from ..errors import UsageError

__all__ = ["ActionInfo", "Beats", "action_info"]


_NEVER_CANCELLED: threading.Event = threading.Event()
_encode: Final = msgspec.msgpack.Encoder().encode


class Beats:
    """An attempt's heartbeats: the action writes them (from its task or its thread), the
    worker reads them (the time of the last one, and details not yet recorded)."""

    def __init__(self, loop: asyncio.AbstractEventLoop,
                 hand_off: Callable[[], str] | None = None) -> None:
        self.loop = loop
        # complete_later(): the token of the attempt, handed off (None: it cannot be)
        self.hand_off = hand_off
        self.token: str | None = None
        self.at = time.monotonic()  # the attempt's start counts as its first heartbeat
        self.details: bytes | None = None  # the last details, until the worker records them
        self.arrived = asyncio.Event()  # set on the loop's thread at each heartbeat
        self.on_arrival: Callable[[], None] | None = None  # and this called, on that thread

    def beat(self, details: bytes | None) -> None:
        """Note a heartbeat (thread-safe); details wake the worker, to record them."""
        self.at = time.monotonic()
        if details is not None:
            self.details = details
            try:
                self.loop.call_soon_threadsafe(self._arrive)
            except RuntimeError:  # the worker's loop is closed: nobody records them any more
                pass

    def _arrive(self) -> None:
        self.arrived.set()
        if self.on_arrival is not None:
            self.on_arrival()

    def take(self) -> bytes | None:
        """The details to record, once."""
        details, self.details = self.details, None
        self.arrived.clear()
        return details


@dataclass(frozen=True, slots=True)
class ActionInfo:
    """Facts about the running action attempt (``durable.action_info()``).

    ``idempotency_key`` is the same on every attempt of one call, and differs between calls:
    pass it to the services the action calls so a retried attempt does not repeat an effect.

    ``cancellation`` is set once the call's result is no longer wanted: the workflow cancelled
    it (it was cancelled itself, an ``asyncio.timeout`` expired, ...), the workflow ended, or
    another worker took the call over. The worker learns it at the attempt's next heartbeat
    (every third of its lease). An ``async def`` action is then cancelled at its current
    ``await``; a plain function keeps running and should check :attr:`cancelled` (or wait on
    ``cancellation``) and stop early. Whatever it returns is still recorded, and ignored.

    ``heartbeat_details`` are the details of the last :meth:`heartbeat` an earlier attempt of
    this call reported (None: none did), so that a long action resumes where it stopped.
    """

    idempotency_key: str
    action: str
    attempt: int
    workflow_id: str
    run_id: str
    tenant: str
    cancellation: threading.Event = _NEVER_CANCELLED
    heartbeat_details: Any = None
    _beats: Beats | None = field(default=None, repr=False, compare=False)

    @property
    def cancelled(self) -> bool:
        """Whether the call's result is no longer wanted (see :attr:`cancellation`)."""
        return self.cancellation.is_set()

    def heartbeat(self, details: Any = None) -> None:
        """Report that the attempt is alive and, with ``details``, how far it got.

        Within the action's ``heartbeat_timeout`` (see ``durable.action``) an attempt must
        call this again, or it times out. The latest details (builtins, dataclasses, msgspec
        Structs: what a payload may hold) are recorded with the call shortly after, and the
        next attempt reads them as :attr:`heartbeat_details`. Details that cannot be encoded
        raise ``PayloadError`` here. Callable from the action's task or thread.
        """
        encoded = None
        if details is not None:
            where = f"the heartbeat details of action {self.action!r}"
            payload = dump_value(details, where)
            check_size(payload, where)
            encoded = _encode(payload)
        if self._beats is not None:
            self._beats.beat(encoded)


    def complete_later(self) -> str:
        """Hand this attempt's outcome to someone else: returns a token, and when the action
        returns, nothing is recorded (what it returns is ignored); the token's holder reports
        the outcome with ``client.complete_action(token, result)`` or
        ``client.fail_action(token, error)``, and ``client.heartbeat_action(token, details)``
        keeps it alive. The action's ``timeout`` and ``heartbeat_timeout`` still apply: when
        they run out first, the attempt timed out and the next one runs (the token is then
        refused). Calling it again returns the same token. Not for attempts that run inline or
        database actions (``UsageError``): declare the action with ``inline=False``.
        """
        beats = self._beats
        if beats is None or beats.hand_off is None:
            raise UsageError(f"action {self.action!r} cannot complete later: this attempt runs "
                             "inline in a workflow task, or in a database transaction; declare "
                             "it @durable.action(inline=False) (and without transaction=)")
        if beats.token is None:
            beats.token = beats.hand_off()
        return beats.token


_action_info: ContextVar[ActionInfo] = ContextVar("durable_action_info")


def action_info() -> ActionInfo:
    """Information about the action attempt running in this task or thread."""
    try:
        return _action_info.get()
    except LookupError:
        raise UsageError("durable.action_info() is only available inside a running action: call "
                         "it from the action's own code (its task or thread)") from None
