"""Queries and updates from the caller's side: submit a request, wait for its answer.

The client records the request in the store, which makes the execution's workflow task
runnable (marked ``requested``), and publishes the task's hint, so the worker that caches the
live instance (sticky execution) or any other worker picks it up. The caller then waits with
keyed wake-ups (``Wakeup.watching_reply``, relayed across processes by PostgreSQL
``LISTEN``), polling the request every ``client.poll_interval`` as well.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any, Final, Literal

import msgspec

from ._definitions import declared_result
from ._ports import HandlePort
from ._history import ErrorInfo
from ._payloads import check_size, dump_value
from ._stores import FINISHED_REQUESTS, Request, workflow_ref
from ._telemetry._tracing import traced
from ._validate import check_id, check_optional_id, check_timeout, show
from .errors import (
    ArgumentTypeError, QueryFailedError, RequestTimeoutError, UnknownQueryError,
    UnknownUpdateError, UpdateFailedError, UpdateRejectedError, ValidationError,
    WorkflowClosedError,
)


__all__ = ["DEFAULT_TIMEOUT", "UpdateHandle", "call", "start_update"]

DEFAULT_TIMEOUT = 30.0  # seconds a query or update waits for a worker by default

Kind = Literal["query", "update"]
_ACCEPTED: Final = FINISHED_REQUESTS | {"accepted"}


@traced("request")
async def call(handle: HandlePort, kind: Kind, name: str, args: tuple[Any, ...], *,
               key: str | None, timeout: float | timedelta | None,
               result_type: Any) -> Any:
    """Send a query or update to the execution and return its answer (or raise why not)."""
    request, limit, result_type = _request(handle, kind, name, args, key, timeout,
                                           result_type)
    try:
        answered = await _answer(handle, request, limit, FINISHED_REQUESTS)
    finally:
        if kind == "query":  # nobody else waits for it: leave nothing behind
            await _forget(handle, request.id)
    return _outcome(handle, answered, result_type)


class UpdateHandle:
    """An update that the workflow accepted (``handle.start_update``): ``id`` is its
    idempotency key, ``await update.result()`` waits for its handler's outcome."""

    def __init__(self, handle: HandlePort, request: Request, result_type: Any) -> None:
        self._handle = handle
        self._request = request
        self._result_type = result_type

    @property
    def id(self) -> str:
        """The update's idempotency key (``handle.update(..., idempotency_key=id)`` waits for
        the same update)."""
        return self._request.id

    @property
    def name(self) -> str:
        """The update's name."""
        return self._request.name

    async def result(self, *, timeout: float | timedelta | None = DEFAULT_TIMEOUT) -> Any:
        """What the update's handler returned (``UpdateFailedError`` if it raised;
        ``RequestTimeoutError`` when it has not finished within ``timeout`` seconds)."""
        limit = check_timeout(timeout, "result(timeout=)")
        answered = await _wait(self._handle, self._request, limit, FINISHED_REQUESTS)
        return _outcome(self._handle, answered, self._result_type)

    def __repr__(self) -> str:
        return f"<UpdateHandle {self.name} {self.id} of {self._handle.workflow_id}>"


@traced("update")
async def start_update(handle: HandlePort, name: str, args: tuple[Any, ...], *,
                       key: str | None, wait_for: Any, timeout: float | timedelta | None,
                       result_type: Any) -> UpdateHandle:
    """Deliver an update and return once the workflow accepted it (``wait_for="accepted"``) or
    once its handler finished (``"completed"``); raise as ``call`` does when it is rejected."""
    if wait_for not in ("accepted", "completed"):
        raise ValidationError(f"wait_for is 'accepted' or 'completed', not {show(wait_for)}",
                              parameter="wait_for")
    request, limit, result_type = _request(handle, "update", name, args, key, timeout,
                                           result_type)
    answered = await _answer(handle, request, limit,
                             _ACCEPTED if wait_for == "accepted" else FINISHED_REQUESTS)
    if answered.status == "rejected":
        _outcome(handle, answered, result_type)  # raises why
    return UpdateHandle(handle, answered, result_type)


def _request(handle: HandlePort, kind: Kind, name: str, args: tuple[Any, ...], key: str | None,
             timeout: float | timedelta | None,
             result_type: Any) -> tuple[Request, float | None, Any]:
    """The request a query or update call makes, checked, how long it may wait, and the type
    its answer converts to (``result_type``, else the handler's declared return type)."""
    check_id(name, f"a {kind} name", error=ArgumentTypeError)
    check_optional_id(key, "an idempotency key", error=ArgumentTypeError)
    limit = check_timeout(timeout, f"{kind}(timeout=)")
    result_type = declared_result(handle._definition, kind, name, result_type)
    _check_result_type(result_type)
    payload = dump_value(list(args), f"arguments of {kind} {name!r}")
    check_size(payload, f"arguments of {kind} {name!r}", handle.client.max_payload_bytes)
    return Request(handle.tenant, handle.workflow_id, key or uuid.uuid4().hex, kind, name,
                   payload, 0.0), limit, result_type


async def _answer(handle: HandlePort, request: Request, limit: float | None,
                  statuses: frozenset[str]) -> Request:
    """Submit the request and wait until its status is one of ``statuses``."""
    answered = await _submit(handle, request)
    return answered if answered.status in statuses else \
        await _wait(handle, request, limit, statuses)


async def _submit(handle: HandlePort, request: Request) -> Request:
    client = handle.client
    stored, made = await client.store.submit_request(request, now=client.clock())
    if stored is None:
        raise WorkflowClosedError(f"execution {handle.workflow_id!r} has ended; update "
                                  f"{request.name!r} was not applied",
                                  workflow_id=handle.workflow_id)
    if made:
        await client.publish([workflow_ref(handle.tenant, handle.workflow_id)])
    return stored


async def _wait(handle: HandlePort, request: Request, limit: float | None,
                statuses: frozenset[str]) -> Request:
    """Wait until the submitted request's status is one of ``statuses`` (submitted again if
    it was deleted meanwhile: its id keeps it from being applied twice)."""
    client, store = handle.client, handle.client.store
    tenant, workflow_id, rid = handle.tenant, handle.workflow_id, request.id
    last, first = request, True
    try:
        async with asyncio.timeout(limit):
            while True:
                with store.wakeup.watching_reply(tenant, workflow_id, rid) as replied:
                    found = await store.get_request(tenant, workflow_id, rid)
                    if found is None:  # deleted meanwhile: ask again
                        found = await _submit(handle, request)
                    last = found
                    if found.status in statuses:
                        return found
                    # A worker may have committed a task that began before the request came.
                    if not first and await store.rearm_request(tenant, workflow_id, rid,
                                                               now=client.clock()):
                        await client.publish([workflow_ref(tenant, workflow_id)])
                    first = False
                    await asyncio.wait([replied], timeout=client.poll_interval)
    except TimeoutError:
        raise _timeout(handle, last, limit) from None


async def _forget(handle: HandlePort, request_id: str) -> None:
    try:
        await asyncio.shield(handle.client.store.forget_request(handle.tenant, handle.workflow_id,
                                                                request_id))
    except Exception:  # a leftover query row is harmless
        pass


def _timeout(handle: HandlePort, request: Request,
             limit: float | None) -> RequestTimeoutError:
    what = f"{request.kind} {request.name!r} of execution {handle.workflow_id!r}"
    accepted = request.status == "accepted"
    if request.kind == "query":
        hint = ("queries are answered by a worker that hosts the workflow: is one running, "
                "is the workflow's code deployed on it, and has the run registered a handler "
                f"for {request.name!r} (a query waits for the code that registers it)?")
    elif accepted:
        hint = (f"it was recorded and its handler still runs: call handle.update again with "
                f"idempotency_key={request.id!r} to wait for its outcome")
    else:
        hint = (f"no worker has taken it yet (is one running, and has the run registered a "
                f"handler for {request.name!r}? an update waits for the code that registers "
                f"it); nothing is recorded, but it is applied later: pass "
                f"idempotency_key={request.id!r} to wait for it again")
    return RequestTimeoutError(f"no answer to {what} within {limit:g}s: {hint}",
                               kind=request.kind, name=request.name, request_id=request.id,
                               workflow_id=handle.workflow_id, timeout=limit, accepted=accepted)


def _outcome(handle: HandlePort, request: Request, result_type: Any) -> Any:
    if request.status == "ok":
        return _convert(request, result_type)
    error = request.error or ErrorInfo("Error", "no answer was recorded")
    attrs = {"workflow_id": handle.workflow_id, "name": request.name, "error_type": error.type,
             "error_message": error.message, "traceback": error.traceback}
    what = f"{request.kind} {request.name!r} of execution {handle.workflow_id!r}"
    if request.kind == "query":
        query_error = UnknownQueryError if error.type == "UnknownQueryError" else QueryFailedError
        raise query_error(f"{what} failed: {error.type}: {error.message}", **attrs)
    if request.status == "rejected":
        rejected = UnknownUpdateError if error.type == "UnknownUpdateError" else UpdateRejectedError
        raise rejected(f"{what} was rejected, nothing was recorded: {error.type}: "
                       f"{error.message}", **attrs)
    raise UpdateFailedError(f"{what} failed in its handler: {error.type}: {error.message}",
                            **attrs)


def _check_result_type(result_type: Any) -> None:
    """A ``result_type`` msgspec cannot convert to is refused before anything is sent."""
    if result_type is None:
        return
    try:
        msgspec.json.Decoder(result_type)
    except Exception as exc:  # TypeError for an unsupported type, anything from odd objects
        raise ArgumentTypeError(f"result_type {show(result_type)} is not a type msgspec can "
                                f"convert to ({exc})", parameter="result_type") from None


def _convert(request: Request, result_type: Any) -> Any:
    if result_type is None:
        return request.result
    try:
        return msgspec.convert(request.result, result_type, builtin_types=(bytes, bytearray))
    except msgspec.ValidationError as exc:
        raise ValidationError(f"the answer to {request.kind} {request.name!r} does not fit "
                              f"{show(result_type)}: {exc}", function=request.name) from None
