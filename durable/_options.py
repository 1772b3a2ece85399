"""Per-call options of an action call (``ctx.run(action, ..., retry=, timeout=,
total_timeout=, priority=)``): how they are recorded in the history and carried by the action's task.

``CallOptions`` is recorded with the call (``ActionScheduled.options``), so replay sees what the
call asked for. The task carries them too, with ``deadline`` (when ``total_timeout`` runs out,
on the clock of the worker that scheduled the call): the stores keep them inside the task's
keyword arguments, under a key no Python parameter can have (:data:`KEY`), so no table changes
and every statement that copies a task copies its options.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec
import msgspec.structs

__all__ = ["KEY", "CallOptions", "RetrySpec", "pack", "unpack", "with_deadline"]

KEY: Final = "\x1eoptions"  # a control character: never a parameter name, never a payload key


class RetrySpec(msgspec.Struct, frozen=True, array_like=True):
    """A ``durable.Retry`` as recorded: ``non_retryable`` by qualified class name."""

    attempts: int | None
    initial: float
    backoff: float
    maximum: float
    non_retryable: list[str] = []


class CallOptions(msgspec.Struct, frozen=True, array_like=True):
    """What one call overrides of its action's declaration (None: the declaration's)."""

    retry: RetrySpec | None = None
    timeout: float | None = None
    total_timeout: float | None = None
    deadline: float | None = None  # on the task only: when total_timeout runs out
    priority: int | None = None  # the task's priority (None: the workflow's)


def pack(kwargs: dict[str, Any], options: CallOptions | None) -> dict[str, Any]:
    """A task's keyword arguments as a store keeps them: with its options, if any."""
    return kwargs if options is None else {**kwargs, KEY: options}


def unpack(kwargs: dict[str, Any]) -> tuple[dict[str, Any], CallOptions | None]:
    """A task's keyword arguments as a store read them, and its options."""
    if KEY not in kwargs:
        return kwargs, None
    kwargs = dict(kwargs)
    return kwargs, msgspec.convert(kwargs.pop(KEY), CallOptions)


def with_deadline(options: CallOptions | None, now: float) -> CallOptions | None:
    """A call's options as its task carries them: ``total_timeout`` from ``now`` (when the
    call was scheduled) as an absolute ``deadline``."""
    if options is None or options.total_timeout is None:
        return options
    return msgspec.structs.replace(options, deadline=now + options.total_timeout)
