"""The checks at durable's public boundaries: ids, names, keys, texts, durations and counts.

Everything a caller hands durable that a store keeps, or that decides when something happens,
is checked here before anything is written, the same way for every store: a value that one
store would take and another refuse (or take, and then fail on for ever) is refused up front
with a typed ``durable.errors`` error that names it.

* Ids, names and keys (tenants, workflow, schedule and child ids, event, query, update,
  workflow and action names, idempotency keys, patch ids, ``ctx.data`` keys, worker
  identities) are non-empty ``str`` of at most :data:`MAX_ID_BYTES` bytes of UTF-8, without
  control characters (NUL among them) or lone surrogates.
* Texts (``ctx.set_state``) are ``str`` of at most :data:`MAX_TEXT_BYTES` bytes without NUL
  or lone surrogates; free texts inside payloads (a cancellation's reason) only need to be
  encodable.
* Priorities are ``int`` (not ``bool``) from :data:`MIN_PRIORITY` to :data:`MAX_PRIORITY`
  (PostgreSQL's ``integer``); fairness keys are ids.
* Durations and timeouts are seconds (``int`` or ``float``, not ``bool``) or ``timedelta``,
  finite and at most :data:`MAX_DURATION` seconds.

A value of the wrong type is an ``ArgumentTypeError`` (also a ``TypeError``), a bad value of
the right type a ``ValidationError``; call sites whose error was fixed before these checks
existed pass the class they promised as ``error=``.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Any, Final

from .errors import ArgumentTypeError, InputError, ValidationError

__all__ = [
    "MAX_DURATION",
    "MAX_ID_BYTES",
    "MAX_PRIORITY",
    "MAX_TEXT_BYTES",
    "MIN_PRIORITY",
    "check_count",
    "check_duration",
    "check_id",
    "check_number",
    "check_optional_id",
    "check_priority",
    "check_retention",
    "check_positive_duration",
    "check_text",
    "check_timeout",
    "check_timer_delay",
    "check_tenant",
    "show",
]

# Why 512 bytes: an id travels inside composite keys and messages that have hard limits. The
# tightest are PostgreSQL's b-tree entries (at most 2,704 bytes: the events' dedup index holds
# a tenant, a workflow id, a run id and an idempotency key, 4 x 512 + headers < 2,200) and its
# NOTIFY payloads (at most 8,000 bytes: an execution's end carries its tenant, workflow id and
# workflow name, 3 x 512 + separators, with room left for the outcome). Bytes, not characters:
# a character takes up to 4 bytes of UTF-8, and the limits above are in bytes.
MAX_ID_BYTES: Final = 512
# ``ctx.set_state``: a column of its own, in no index and no NOTIFY payload.
MAX_TEXT_BYTES: Final = 4096
# About 100 years: due times stay far inside what datetimes can show (year 9999).
MAX_DURATION: Final = 100 * 365 * 86400.0

# A priority is stored in an ``integer`` column (int32) on every store.
MIN_PRIORITY: Final = -(2**31)
MAX_PRIORITY: Final = 2**31 - 1

# C0 control characters (NUL, the unit separator NOTIFY payloads are joined with, newlines) and
# DEL: never part of an id, and NUL cannot be stored in a PostgreSQL text column at all.
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")


def check_id(value: Any, what: str, *, error: type[InputError] | None = None,
             limit: int = MAX_ID_BYTES) -> str:
    """``value`` if it is a valid id, name or key (see the module docstring); ``what`` names
    it in the error ("a workflow id")."""
    if type(value) is not str:  # a str subclass could encode differently: refuse it too
        raise (error or ArgumentTypeError)(
            f"{what} must be a non-empty str, not {show(value)}", parameter=what)
    if not value:
        raise (error or ValidationError)(f"{what} must be a non-empty str, not ''",
                                         parameter=what)
    if _CONTROL.search(value):
        raise (error or ValidationError)(
            f"{what} must not contain control characters (NUL, newlines, ...): {show(value)}",
            parameter=what)
    size = _utf8_size(value, what, error)
    if size > limit:
        raise (error or ValidationError)(
            f"{what} is {size} bytes long in UTF-8; the limit is {limit} bytes: "
            f"{show(value)}", parameter=what, size=size, limit=limit)
    return value


def check_optional_id(value: Any, what: str, *,
                      error: type[InputError] | None = None) -> str | None:
    """:func:`check_id`, with None passed through (an optional idempotency key)."""
    return None if value is None else check_id(value, what, error=error)


def check_tenant(value: Any) -> str:
    """A tenant name (an id)."""
    return check_id(value, "a tenant")


def check_text(value: Any, what: str, *, limit: int = MAX_TEXT_BYTES) -> str:
    """``value`` if it is a ``str`` that every store keeps as it is: no NUL, no lone
    surrogates, at most ``limit`` bytes of UTF-8 (empty is fine)."""
    if type(value) is not str:
        raise ArgumentTypeError(f"{what} must be a str, not {show(value)}", parameter=what)
    if "\x00" in value:
        raise ValidationError(f"{what} must not contain NUL characters: {show(value)}",
                              parameter=what)
    size = _utf8_size(value, what, None)
    if size > limit:
        raise ValidationError(f"{what} is {size} bytes long in UTF-8; the limit is {limit} "
                              f"bytes", parameter=what, size=size, limit=limit)
    return value


def check_duration(value: Any, what: str) -> float:
    """A duration in seconds: ``int``/``float`` seconds or a ``timedelta``, finite and at
    most :data:`MAX_DURATION` either way (negative durations are the caller's to treat)."""
    if type(value) in (float, int) and -MAX_DURATION <= value <= MAX_DURATION:
        return float(value)  # the common case, checked in one line (NaN fails it)
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(f"{what} must be seconds or a timedelta, not {show(value)}",
                                parameter=what)
    else:
        try:
            seconds = float(value)
        except OverflowError:  # an int too large for a float
            seconds = math.inf
    if not math.isfinite(seconds) or abs(seconds) > MAX_DURATION:
        raise ValidationError(f"{what} must be a finite number of seconds of at most "
                              f"{MAX_DURATION:.0f} (about 100 years), not {show(value)}",
                              parameter=what)
    return seconds


def check_positive_duration(value: Any, what: str) -> float | None:
    """An optional duration (see :func:`check_duration`) of more than 0 seconds, or None."""
    if value is None:
        return None
    seconds = check_duration(value, what)
    if not seconds > 0:
        raise ValidationError(f"{what} must be more than 0 seconds, not {show(value)}",
                              parameter=what)
    return seconds


def check_retention(value: object, what: str = "retention") -> float | None:
    """A retention period: seconds or a ``timedelta``, at least 0; None stays None."""
    if value is None:
        return None
    seconds = check_duration(value, what)
    if seconds < 0:
        raise ValidationError(f"{what} must be 0 seconds or more (how long a closed execution "
                              f"is kept), not {show(value)}", parameter=what)
    return seconds


def check_timeout(value: Any, what: str) -> float | None:
    """An optional timeout: None (no limit) or a duration (:func:`check_duration`)."""
    return None if value is None else check_duration(value, what)


def check_timer_delay(delay: float) -> float:
    """The delay of a durable timer set by workflow code (``asyncio.sleep``, ``call_later``,
    ``asyncio.timeout``): finite and at most :data:`MAX_DURATION`, else a ``ValidationError``
    raised in the workflow, at the call that set it."""
    if not (delay <= MAX_DURATION):  # also NaN, and +inf
        raise ValidationError(f"a timer's delay must be a finite number of seconds of at most "
                              f"{MAX_DURATION:.0f}, not {delay!r}", parameter="delay")
    if delay == -math.inf:
        raise ValidationError("a timer's deadline must be finite, not -inf", parameter="delay")
    return float(delay)  # a bool or an int is recorded as the float the history holds


def check_number(value: Any, what: str, *, minimum: float = 0.0, exclusive: bool = False,
                 maximum: float = math.inf) -> float:
    """A finite ``int`` or ``float`` (not ``bool``) within ``[minimum, maximum]`` (``minimum``
    itself excluded when ``exclusive``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(f"{what} must be a number, not {show(value)}", parameter=what)
    number = float(value) if abs(value) < 1e308 else math.inf
    low_ok = number > minimum if exclusive else number >= minimum
    if not (math.isfinite(number) and low_ok and number <= maximum):
        bound = f"> {minimum:g}" if exclusive else f">= {minimum:g}"
        upper = "" if maximum == math.inf else f" and <= {maximum:g}"
        raise ValidationError(f"{what} must be a finite number {bound}{upper}, not "
                              f"{show(value)}", parameter=what)
    return number


def check_count(value: Any, what: str, *, minimum: int = 0, maximum: int = 2**31 - 1) -> int:
    """An ``int`` (not ``bool``) within ``[minimum, maximum]`` (a limit, a size, a batch)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(f"{what} must be an int, not {show(value)}", parameter=what)
    if not minimum <= value <= maximum:
        raise ValidationError(f"{what} must be between {minimum} and {maximum}, not {value}",
                              parameter=what)
    return value


def check_priority(value: Any, what: str) -> int:
    """A task priority: an ``int`` from ``MIN_PRIORITY`` to ``MAX_PRIORITY`` (higher first)."""
    return check_count(value, what, minimum=MIN_PRIORITY, maximum=MAX_PRIORITY)


def _utf8_size(value: str, what: str, error: type[InputError] | None) -> int:
    if value.isascii():
        return len(value)
    try:
        return len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise (error or ValidationError)(
            f"{what} contains a lone surrogate, which cannot be encoded: {show(value)}",
            parameter=what) from None


def show(value: Any) -> str:
    """A short repr of a caller's value for messages: a 100 kB id is not repeated in full,
    and a value whose repr fails (nested 100,000 deep) does not turn the error into another."""
    try:
        text = repr(value)
    except Exception:  # a repr that raises is the caller's bug, not a reason to hide ours
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 80 else f"{text[:60]}...{text[-12:]} ({type(value).__name__})"
