"""Flow control: concurrency and rate limits of actions, enforced by the store's claims.

``@durable.action(max_concurrent=5, rate="50/s")`` bounds how many attempts of the action run
at once and how many start per second (``/s``, ``/m`` or ``/h``), across every worker and
server that shares the store. Claims of a limited action take a lock on its row of
``flow_buckets`` (one transaction), count its leased tasks, refill its token bucket, claim at
most what both allow and take the tokens: two workers never see the same room. Such actions
never run inline (that would bypass the claim). A limited action's tasks wait, due, until
there is room.

Invariant: at most ``max_concurrent`` tasks of the action hold a live lease at any time; at
most ``rate * t + burst`` attempts start in any ``t`` seconds, ``burst`` being a tenth of a
second's worth (at least one).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Any, Final, NamedTuple

from ._validate import check_count, show
from .errors import ArgumentTypeError, ValidationError

__all__ = ["Limit", "burst", "check_limit", "parse_rate", "refill", "room", "waits"]

_RATE: Final = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*/\s*(s|m|h)\s*$")
_PER: Final = {"s": 1.0, "m": 60.0, "h": 3600.0}


class Limit(NamedTuple):
    """An action's limits: attempts running at once, and starts per second (None: none)."""

    max_concurrent: int | None = None
    rate: float | None = None


def parse_rate(rate: Any, what: str = "rate") -> float | None:
    """``"100/s"``, ``"20/m"`` or ``"5/h"`` as starts per second (None stays None)."""
    if rate is None:
        return None
    if not isinstance(rate, str):
        raise ArgumentTypeError(f"{what} is a str like '100/s', '20/m' or '5/h', not {show(rate)}",
                                parameter=what)
    match = _RATE.match(rate)
    per_second = float(match.group(1)) / _PER[match.group(2)] if match else 0.0
    if not match or not (0 < per_second < math.inf):
        raise ValidationError(f"{what} must be a positive number of starts per second, minute "
                              f"or hour, like '100/s', '20/m' or '5/h', not {show(rate)}",
                              parameter=what)
    return per_second


def check_limit(max_concurrent: Any, rate: Any) -> Limit | None:
    """An action's limits, checked (typed errors for bad ones); None when it has none."""
    if max_concurrent is not None:
        check_count(max_concurrent, "max_concurrent", minimum=1)
    per_second = parse_rate(rate)
    if max_concurrent is None and per_second is None:
        return None
    return Limit(max_concurrent, per_second)


def burst(rate: float) -> float:
    """How many tokens a rate's bucket holds at most: a tenth of a second's worth, at least 1."""
    return max(1.0, rate / 10)


def room(limit: Limit, running: int, tokens: float, wanted: int) -> int:
    """How many tasks a claim may take: ``wanted``, within both limits."""
    if limit.max_concurrent is not None:
        wanted = min(wanted, limit.max_concurrent - running)
    if limit.rate is not None:
        wanted = min(wanted, math.floor(tokens + 1e-9))
    return max(wanted, 0)


def refill(limit: Limit, tokens: float | None, refilled_at: float, now: float) -> float:
    """A bucket's tokens at ``now`` (a new bucket starts full)."""
    if limit.rate is None:
        return 0.0
    if tokens is None:
        return burst(limit.rate)
    return min(burst(limit.rate), tokens + max(now - refilled_at, 0.0) * limit.rate)


def waits(rows: Iterable[Sequence[Any]], now: float) -> dict[str, str]:
    """Why a limited action's tasks wait, by route, from rows of (route, max_concurrent, rate,
    tokens, refilled_at, running): what ``describe()`` shows."""
    found: dict[str, str] = {}
    for route, max_concurrent, rate, tokens, refilled_at, running in rows:
        limit = Limit(max_concurrent, rate)
        if max_concurrent is not None and running >= max_concurrent:
            found[route] = f"at its limit of {max_concurrent} running at once"
        elif rate is not None and refill(limit, tokens, refilled_at, now) < 1:
            found[route] = f"at its rate limit of {rate:g} per second"
    return found
