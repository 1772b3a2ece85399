"""Async action completion: an action hands its outcome to someone else.

``durable.action_info().complete_later()`` returns a token and marks the attempt handed off:
when the action returns, the worker records no outcome; instead the task is leased to the
token (an owner no worker has, which no worker's death releases) until the action's timeouts
run out. Whoever holds the token reports the outcome with ``client.complete_action(token,
result)`` or ``client.fail_action(token, error)``, and keeps the attempt alive with
``client.heartbeat_action(token, details)`` (needed within the action's
``heartbeat_timeout``, if it has one). When the lease runs out first, the attempt timed out:
a worker claims the task as the next attempt, as for any attempt that died.

A token is ``dur1.`` and the URL-safe base64 of a MessagePack array: the task's key, its
attempt and route, the holder (a random owner name), the deadline of its ``timeout`` (or
None), its ``heartbeat_timeout`` (or None) and the delay of its next attempt should it fail
(None: no attempt is left). It carries no secret beyond the holder, which names the attempt.

Invariant: only the holder can record the outcome of a handed-off attempt, and only while it
holds the lease: a token whose attempt timed out is refused (``ActionTokenError``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import uuid
from typing import Any, Final

import msgspec

from ._history import ActionCompleted, ActionFailed
from ._ports import ClientPort
from ._payloads import check_size, describe_error, dump_value, error_info
from ._stores import ActionTask, workflow_ref
from .errors import ActionTokenError, ArgumentTypeError

__all__ = ["FOREVER", "Handoff", "complete", "decode", "fail", "heartbeat"]

_PREFIX: Final = "dur1."
FOREVER: Final = 10 * 365 * 86400.0  # the lease of a handed-off attempt with no timeouts
_HANDOFF_WAITS: Final = 200  # tries, 10 ms apart, while the worker hands the attempt over


class Handoff(msgspec.Struct, frozen=True, array_like=True):
    """What a token names: the attempt, who holds it and how its timeouts apply."""

    tenant: str
    workflow_id: str
    run_id: str
    cmd: int
    name: str
    attempt: int
    holder: str
    deadline: float | None  # when its ``timeout`` runs out (the worker's clock)
    beat: float | None  # its ``heartbeat_timeout``
    retry_in: float | None  # the delay of the next attempt if it fails; None: none is left

    @classmethod
    def of(cls, task: ActionTask, deadline: float | None, beat: float | None,
           retry_in: float | None) -> Handoff:
        return cls(task.tenant, task.workflow_id, task.run_id, task.cmd, task.name,
                   task.attempt, f"async:{uuid.uuid4().hex}", deadline, beat, retry_in)

    @property
    def token(self) -> str:
        return _PREFIX + base64.urlsafe_b64encode(msgspec.msgpack.encode(self)).decode()

    def lease_until(self, now: float) -> float:
        """Until when the holder's lease lasts from ``now``: the next heartbeat's due time,
        within the timeout's deadline."""
        until = now + (FOREVER if self.beat is None else self.beat)
        return until if self.deadline is None else min(until, self.deadline)

    def task(self) -> ActionTask:
        return ActionTask(self.tenant, self.workflow_id, self.run_id, self.cmd, self.name, [],
                          {}, self.attempt)


def decode(token: Any) -> Handoff:
    """The hand-off a token names (``ActionTokenError`` if it is not one)."""
    if not isinstance(token, str):
        raise ArgumentTypeError(f"an action token is a str, not {type(token).__name__}",
                                parameter="token")
    try:
        if not token.startswith(_PREFIX):
            raise ValueError("no dur1. prefix")
        return msgspec.msgpack.decode(base64.urlsafe_b64decode(token[len(_PREFIX):]),
                                      type=Handoff)
    except (ValueError, binascii.Error, msgspec.DecodeError):
        raise ActionTokenError("this is not an action token (complete_later() returns them)",
                               reason="malformed") from None


async def _held(client: ClientPort, handoff: Handoff, now: float) -> ActionTask:
    """The handed-off task (its key and attempt), if the holder still holds it (its lease
    renewed as a heartbeat)."""
    client.acts_for(handoff.tenant)
    task = handoff.task()
    for _ in range(_HANDOFF_WAITS):
        if await client.store.extend_action_lease(
                task, handoff.holder, lease=handoff.lease_until(now) - now, now=now):
            return task
        stored = await _pending(client, handoff)
        if stored is None or stored.attempt != handoff.attempt:
            break
        await asyncio.sleep(0.01)  # the worker is handing the attempt to the token just now
    raise ActionTokenError(
        f"action {handoff.name!r} of execution {handoff.workflow_id!r} no longer waits for "
        "this token: its outcome was recorded, or its timeouts ran out and another attempt "
        "took over", reason="gone")


async def _pending(client: ClientPort, handoff: Handoff) -> ActionTask | None:
    """The action's task as stored, if it is pending."""
    actions, _ = await client.store.pending_work(handoff.tenant, handoff.workflow_id)
    return next((a for a in actions if a.run_id == handoff.run_id and a.cmd == handoff.cmd),
                None)


async def complete(client: ClientPort, token: str, result: Any) -> None:
    """``client.complete_action``."""
    handoff = decode(token)
    value = dump_value(result, f"the result of action {handoff.name!r}")
    check_size(value, f"the result of action {handoff.name!r}")
    await _record(client, handoff, ActionCompleted(0, 0.0, handoff.cmd, value, handoff.attempt))


async def fail(client: ClientPort, token: str, error: Any) -> None:
    """``client.fail_action``: the attempt failed with ``error`` (an exception, or a message):
    the call is retried as its ``Retry`` says, else it fails."""
    handoff = decode(token)
    if isinstance(error, str):
        error = RuntimeError(error)
    if not isinstance(error, BaseException):
        raise ArgumentTypeError(f"error is an exception or a str, not {type(error).__name__}",
                                parameter="error")
    if handoff.retry_in is None:
        await _record(client, handoff, ActionFailed(0, 0.0, handoff.cmd, error_info(error),
                                                    handoff.attempt))
        return
    now = client.clock()
    task = await _held(client, handoff, now)
    await client.store.retry_action_task(task, handoff.holder, visible_at=now + handoff.retry_in,
                                         error=describe_error(error), now=now)


async def heartbeat(client: ClientPort, token: str, details: Any) -> None:
    """``client.heartbeat_action``: the attempt is alive (its lease renewed), and how far."""
    handoff = decode(token)
    now = client.clock()
    if details is None:
        await _held(client, handoff, now)
        return
    where = f"the heartbeat details of action {handoff.name!r}"
    payload = dump_value(details, where)
    check_size(payload, where)
    if not await client.store.record_action_heartbeat(
            handoff.task(), handoff.holder, msgspec.msgpack.encode(payload),
            lease=handoff.lease_until(now) - now, now=now):
        await _held(client, handoff, now)  # raises why


async def _record(client: ClientPort, handoff: Handoff,
                  event: ActionCompleted | ActionFailed) -> None:
    now = client.clock()
    task = await _held(client, handoff, now)
    if not await client.store.complete_action_task(task, event, now=now):
        raise ActionTokenError(f"the outcome of action {handoff.name!r} was recorded before",
                               reason="gone")
    await client.publish([workflow_ref(handoff.tenant, handoff.workflow_id)])
