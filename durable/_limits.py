"""Flow control: concurrency and rate limits of actions, enforced by the store's claims.

``@durable.action(max_concurrent=5, rate="50/s")`` bounds how many attempts of the action run
at once and how many start per second (``/s``, ``/m`` or ``/h``), across every worker and
server that shares the store. Claims of a limited action take a lock on its row of
``flow_buckets`` (one transaction), count its leased tasks, refill its token bucket, claim at
most what both allow and take the tokens: two workers never see the same room. A limited
action's tasks wait, due, until there is room.

Queue limits (``Worker(queue_limits={"email": QueueLimit(max_concurrent=5)})``) bound every
action task on a queue together: their bucket is the queue's row of ``flow_buckets`` (key
:func:`queue_bucket`), which a claim locks before the action's own, so both must allow it.
The limits travel with each claim: workers that declare different limits for one queue each
claim under their own (the tighter one binds the workers that declare it; the bucket's row
shows the last claim's).

A limited action runs inline only under a *hold* (``flow_holds``: slots held by one worker,
until its lease ends): running counts leased tasks plus held slots, so an inline attempt holds
a lease like any other attempt (``_worker._holds``).

Invariant: at most ``max_concurrent`` tasks of the action (of the queue) hold a live lease or
a held slot at any time; at most ``rate * t + burst`` attempts start in any ``t`` seconds,
``burst`` being a tenth of a second's worth (at least one). Tokens a worker takes ahead for
inline attempts are spent within ``AHEAD`` seconds or dropped, which adds at most
``rate * AHEAD`` (another burst's worth) to that bound.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, NamedTuple

from ._queues import DEFAULT_QUEUE, SEP, check_queue, unroute
from ._validate import check_count, show
from .errors import ArgumentTypeError, ValidationError

__all__ = ["AHEAD", "Hold", "Limit", "QueueLimit", "RouteLimit", "UNBOUNDED", "burst", "check_limit",
           "check_queue_limits", "grant", "parse_rate", "queue_bucket", "queue_prefix", "refill",
           "room",
           "waits"]

AHEAD: Final = 0.1  # seconds that tokens taken ahead for inline attempts stay spendable

_RATE: Final = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*/\s*(s|m|h)\s*$")
_PER: Final = {"s": 1.0, "m": 60.0, "h": 3600.0}


class Limit(NamedTuple):
    """An action's limits: attempts running at once, and starts per second (None: none)."""

    max_concurrent: int | None = None
    rate: float | None = None


class RouteLimit(NamedTuple):
    """What bounds the claims of one hosted action route: the action's own limits and its
    queue's (either may be None)."""

    action: Limit | None = None
    queue: Limit | None = None

    def buckets(self, route: str) -> list[tuple[str, Limit]]:
        """The ``flow_buckets`` keys that a claim of ``route`` locks, in the order it locks
        them (the queue's first: every claimer locks in this order), with their limits."""
        found = [] if self.queue is None else [(queue_bucket(unroute(route)[1]), self.queue)]
        return found + ([] if self.action is None else [(route, self.action)])


class QueueLimit:
    """Limits of one task queue, shared by every action on it, enforced across every worker.

    ``durable.Worker(..., queue_limits={"email": durable.QueueLimit(max_concurrent=5,
    rate="100/s")})``: at most ``max_concurrent`` action attempts on queue ``email`` run at
    once and at most ``rate`` start per second (``"100/s"``, ``"20/m"``, ``"5/h"``), across all
    workers that share the store; an action's own limits apply too. Each worker claims under
    the limits it declares: give every worker of a queue the same ones.
    """

    __slots__ = ("max_concurrent", "rate", "limit")

    def __init__(self, max_concurrent: int | None = None, rate: str | None = None) -> None:
        limit = check_limit(max_concurrent, rate)
        if limit is None:
            raise ValidationError("a QueueLimit sets max_concurrent, rate or both, e.g. "
                                  "QueueLimit(max_concurrent=5, rate='100/s')",
                                  parameter="max_concurrent")
        self.max_concurrent: int | None = max_concurrent
        self.rate: str | None = rate
        self.limit: Limit = limit

    def __repr__(self) -> str:
        return f"QueueLimit(max_concurrent={self.max_concurrent!r}, rate={self.rate!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, QueueLimit) and other.limit == self.limit

    def __hash__(self) -> int:
        return hash(self.limit)


def check_queue_limits(value: Any, served: frozenset[str] | None,
                       own: Iterable[str]) -> dict[str, Limit]:
    """``Worker(queue_limits=...)``: a mapping of queue name to ``QueueLimit``, each queue one
    the worker serves (``served``, or the queues of its definitions, ``own``)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ArgumentTypeError(f"queue_limits is a dict of queue name to durable.QueueLimit, "
                                f"not {show(value)}", parameter="queue_limits")
    queues = served if served is not None else frozenset(own)
    limits: dict[str, Limit] = {}
    given: Mapping[Any, Any] = value  # pyright: ignore[reportUnknownVariableType]
    for queue, limit in given.items():
        check_queue(queue, "a queue name in queue_limits")
        if not isinstance(limit, QueueLimit):
            raise ArgumentTypeError(f"queue_limits[{queue!r}] is a durable.QueueLimit, not "
                                    f"{show(limit)}", parameter="queue_limits")
        if queue not in queues:
            raise ValidationError(f"queue_limits names queue {queue!r}, which this worker does "
                                  f"not serve (it serves {', '.join(sorted(queues)) or 'none'}); "
                                  "serve it (queues=[...]) or drop its limit",
                                  parameter="queue_limits")
        limits[queue] = limit.limit
    return limits


def queue_bucket(queue: str) -> str:
    """The ``flow_buckets`` key of a queue's limits (no route starts with the separator)."""
    return SEP + queue


def queue_prefix(queue: str) -> str:
    """What the routes on ``queue`` start with; '' for the default queue (routes with no
    separator at all)."""
    return "" if queue == DEFAULT_QUEUE else queue + SEP


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
    """Why limited tasks wait, by bucket key (an action's route or :func:`queue_bucket`), from
    rows of (key, max_concurrent, rate, tokens, refilled_at, running): what ``describe()``
    shows."""
    found: dict[str, str] = {}
    for key, max_concurrent, rate, tokens, refilled_at, running in rows:
        limit = Limit(max_concurrent, rate)
        whose = f"waits for queue {key[len(SEP):]!r}'s" if key.startswith(SEP) else "waits: at its"
        if max_concurrent is not None and running >= max_concurrent:
            found[key] = f"{whose} limit of {max_concurrent} running at once"
        elif rate is not None and refill(limit, tokens, refilled_at, now) < 1:
            found[key] = f"{whose} rate limit of {rate:g} per second"
    return found


UNBOUNDED: Final = 1 << 30  # what a grant reports for a dimension the limit leaves free


class Hold(NamedTuple):
    """A worker's request to hold slots and take tokens of one bucket for inline attempts:
    ``used`` slots it holds that are running (kept whatever the room), ``need`` for attempts
    about to start, and up to ``extra`` ahead (only from half of the room left)."""

    bucket: str
    limit: Limit
    used: int
    need: int
    extra: int


def grant(hold: Hold, running_others: int, tokens: float) -> tuple[int, int]:
    """What a hold gets: (slots held in all, tokens taken). A dimension that ``hold.limit``
    does not bound is ``UNBOUNDED`` slots, or 0 tokens (none are needed)."""
    limit = hold.limit
    slots = UNBOUNDED
    if limit.max_concurrent is not None:
        free = limit.max_concurrent - running_others - hold.used
        new = max(min(hold.need, free), 0)
        slots = hold.used + new + min(hold.extra, max(free - new, 0) // 2)
    taken = 0
    if limit.rate is not None:
        available = math.floor(tokens + 1e-9)
        taken = max(min(hold.need, available), 0)
        taken += min(hold.extra, max(available - taken, 0) // 2)
    return slots, taken
