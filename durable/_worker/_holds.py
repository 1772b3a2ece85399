"""Inline attempts of limited actions: slots and tokens that a worker holds in the store.

An action with limits (its own, or its queue's, ``durable._limits``) may run inline, inside
the workflow task that schedules it, only while the worker holds a slot of each bucket that
bounds it (a ``flow_holds`` row, which every claim counts as running) and a token of each
rate. Asking the store for each attempt would cost a transaction per step, which is what
inline attempts save: so the worker holds a few slots and takes a few tokens ahead (at most
half of the room left, ``durable._limits.grant``) and hands them out here, asking again when
they run out. Slots are held until ``lease`` seconds after the last ask, and handed out only
while more than ``lease / 2`` (the longest an inline attempt runs) is left; tokens are spent
within ``AHEAD`` seconds or dropped; slots that stayed unused for ``IDLE`` seconds, and spare
slots of a limit that binds, are given back (:meth:`Holds.trim`), so that a worker does not
keep other workers' tasks waiting. An attempt that gets no slot or no token is queued, as any other.

Invariant: ``used <= held`` for each bucket, and the store's hold row counts at least
``held`` slots while ``until`` has not passed (an ask keeps every slot held; a trim lowers
``held`` before its write): an inline attempt holds one slot of each of its buckets from
before it starts until it has ended.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Mapping
from typing import Final

from .._limits import AHEAD, Hold, Limit, RouteLimit
from .._queues import route
from .._stores import ActionTask, TaskStore

__all__ = ["Holds"]

logger = logging.getLogger("durable.worker")

IDLE: Final = 0.5  # seconds unused after which held slots are given back
_MOST_AHEAD: Final = 1024  # slots or tokens asked for ahead, at most


class _Allowance:
    __slots__ = ("limit", "held", "used", "until", "tokens", "tokens_until", "idle_since",
                 "binding")

    def __init__(self, limit: Limit) -> None:
        self.limit = limit
        self.held = self.used = 0
        self.tokens = 0
        self.until = self.tokens_until = self.idle_since = -math.inf
        self.binding = False  # the last ask got fewer slots than it asked for

    def free(self, now: float, margin: float) -> bool:
        """A slot and a token for one more attempt starting now."""
        return (self.limit.max_concurrent is None
                or (self.used < self.held and now + margin < self.until)) and \
            (self.limit.rate is None or (self.tokens >= 1 and now < self.tokens_until))


class Holds:
    """The slots and tokens one worker holds, by bucket (``limits``: its hosted routes')."""

    def __init__(self, store: TaskStore, owner: str, lease: float, clock: Callable[[], float],
                 limits: Mapping[str, RouteLimit]) -> None:
        self.store, self.owner, self.lease, self.clock = store, owner, lease, clock
        self.limits = limits
        self._allowances: dict[str, _Allowance] = {}
        self._lock = asyncio.Lock()
        self._started = 0  # attempts admitted since the last ask: how much to ask ahead
        self._buckets: dict[tuple[str, str], list[tuple[str, Limit]]] = {}  # by (name, queue)

    def buckets(self, task: ActionTask) -> list[tuple[str, Limit]]:
        """The buckets that bound the action's attempts (none: it has no limits)."""
        found = self._buckets.get((task.name, task.queue))
        if found is None:
            key = route(task.name, task.queue)
            bounds = self.limits.get(key)
            found = self._buckets[(task.name, task.queue)] = \
                [] if bounds is None else bounds.buckets(key)
        return found

    async def admit(self, tasks: list[ActionTask]) -> list[ActionTask]:
        """The tasks that run inline now, each holding a slot and a token of every bucket of
        its limits (release them with :meth:`release`); the others are queued."""
        needs: dict[str, tuple[Limit, int]] = {}
        for task in tasks:
            for key, limit in self.buckets(task):
                needs[key] = (limit, needs.get(key, (limit, 0))[1] + 1)
        if not needs:
            return tasks
        if not self._room(needs):
            async with self._lock:  # one ask at a time; the others wait for its answer
                if not self._room(needs):
                    await self._ask(needs)
        now, admitted = self.clock(), list[ActionTask]()
        for task in tasks:
            buckets = [self._allowance(key, limit) for key, limit in self.buckets(task)]
            if all(a.free(now, self.lease / 2) for a in buckets):
                for allowance in buckets:
                    allowance.used += 1
                    allowance.tokens -= 1
                admitted.append(task)
        self._started += len(admitted)
        return admitted

    def release(self, tasks: list[ActionTask]) -> None:
        """These admitted attempts have ended: their slots are free again."""
        now = self.clock()
        for task in tasks:
            for key, limit in self.buckets(task):
                allowance = self._allowance(key, limit)
                allowance.used -= 1
                if allowance.used == 0:
                    allowance.idle_since = now

    async def trim(self) -> None:
        """Give back held slots that are not in use: all of them once unused for ``IDLE``
        seconds, and at every call where the limit binds (the last ask got less than it
        asked for), so that other workers' tasks get the room (best effort)."""
        if self._lock.locked():
            return  # an ask is in flight
        now = self.clock()
        spare = [(k, a) for k, a in self._allowances.items()
                 if a.limit.max_concurrent is not None and a.held > a.used
                 and (a.binding or (a.used == 0 and now - a.idle_since >= IDLE))]
        if not spare:
            return
        async with self._lock:
            holds: list[Hold] = []
            for key, allowance in spare:  # handed out no more from now on
                allowance.held = allowance.used
                holds.append(Hold(key, allowance.limit, allowance.used, 0, 0))
            try:
                await self.store.hold_limited(holds, self.owner, lease=self.lease, now=now)
            except Exception:  # the rows stay larger than needed until they lapse
                logger.warning("could not give back held slots", exc_info=True)

    def _allowance(self, key: str, limit: Limit) -> _Allowance:
        allowance = self._allowances.get(key)
        if allowance is None or allowance.limit != limit:
            allowance = self._allowances[key] = _Allowance(limit)
        return allowance

    def _room(self, needs: Mapping[str, tuple[Limit, int]]) -> bool:
        now = self.clock()
        for key, (limit, count) in needs.items():
            allowance = self._allowance(key, limit)
            if limit.max_concurrent is not None and (
                    allowance.held - allowance.used < count
                    or now + self.lease / 2 >= allowance.until):
                return False
            if limit.rate is not None and (allowance.tokens < count
                                           or now >= allowance.tokens_until):
                return False
        return True

    async def _ask(self, needs: Mapping[str, tuple[Limit, int]]) -> None:
        """One transaction: hold slots and take tokens for every bucket in ``needs``.

        The hold asked for keeps every slot held now (not only those in use): attempts
        admitted while the ask is in flight take them, and the new hold must count them."""
        now = self.clock()
        ahead = min(_MOST_AHEAD, max(8, 2 * self._started))
        self._started = 0
        keys = list(needs)
        holds: list[Hold] = []
        for key in keys:
            limit, count = needs[key]
            allowance = self._allowance(key, limit)
            keep = allowance.held if allowance.until > now else allowance.used
            holds.append(Hold(key, limit, keep, count, ahead))
        try:
            got = await self.store.hold_limited(holds, self.owner, lease=self.lease, now=now)
        except Exception:  # the store is down: nothing runs inline; the tasks are queued
            logger.warning("could not hold slots for inline attempts", exc_info=True)
            return
        for hold, (slots, tokens) in zip(holds, got):
            allowance = self._allowance(hold.bucket, hold.limit)
            allowance.held, allowance.until = slots, now + self.lease
            allowance.tokens, allowance.tokens_until = tokens, now + AHEAD
            allowance.binding = slots < hold.used + hold.need + hold.extra
