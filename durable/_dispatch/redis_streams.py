"""Redis Streams dispatch: hints in partitioned streams, leases in the store.

How a hint travels:

1. Whoever made a task runnable commits it to the store, then ``publish`` XADDs a hint to the
   task's stream (trimmed with ``MAXLEN ~``); key names are in ``_keys.py``.
2. A worker's ``receive`` reads new entries with XREADGROUP (the worker identity is the
   consumer), takes over entries that a stopped consumer left pending for longer than a lease
   (XAUTOCLAIM), and turns hints into leased tasks with the store's compare-and-set
   ``claim_refs``. Hints that claim nothing (the task finished, is leased, is not due yet or is
   unknown) are acknowledged at once.
3. ``ack`` XACKs a claim's entries after the worker committed the task's outcome to the store:
   the entry of a worker that dies mid-task stays pending, and is taken over.

Sticky routes: a worker that caches an execution sets its route key (``stick``, expiring
after ``route_ttl`` unless renewed); a workflow hint goes to that worker's sticky stream while
its alive key exists. A route is removed when its execution ends, whichever worker ends it
(``forget``), or when its worker evicts the execution; a dead worker's routes expire. Hints
the outbox re-announces ignore routes (``sticky=False``), so a route to a worker that does not
claim (a forged one) holds an execution for at most ``redispatch_after``.

Fairness: a hint's partition is a hash of its tenant, a worker reads every partition (a read
adds at most ``limit`` hints of each stream to its backlog, and streams with nothing in the
backlog are read again on every call), and ``_fair.Turns`` takes hints round-robin across
tenants: one tenant's backlog delays another tenant's ready task by one round of claims.

Redis Cluster (``redis+cluster://``): every script touches one slot (a worker's alive key and
sticky stream share a hash tag; hints for a gone worker are added to their partitions by the
caller), ``XREADGROUP`` and the trimming script go once per slot (a partition's streams share
one), and a blocking read per slot stays out until it answers, harvested by later calls.

Bounds: every XADD trims with ``MAXLEN ~``; every lease (at least every second) a worker
trims its streams down to the entries not yet delivered or still pending, and removes the
consumers that killed workers left behind; a dead worker's sticky stream expires.

Invariant: Redis holds only hints. A lost entry (FLUSHALL, a restart, a trimmed stream, Redis
down at publish time, a hint acknowledged while its task was leased) loses no work: the store's
outbox (``Store.dispatch_due``), which the server publishes, announces the task again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Generator, Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .._extras import require

require("redis", "Redis dispatch (redis_url=, --redis)")  # before the imports of redis below

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError, ResponseError

from .._batching import Batcher
from .._queues import route
from .._stores import ActionTask, TaskRef, TaskStore, WorkflowTask
from .._urls import redact
from ..errors import InvalidArgumentError, StoreUnavailableError
from . import _keys
from ._base import Claim, ClaimSpec, room_for
from ._fair import Hint, Turns, task_key
from ._hints import encode_ref, hints_of, ref_of, text
from ._limited import Looks, claim_actions
from ._reads import StreamReads, harvest
from ._redis_link import MAX_CONNECTIONS, ROUTE, TIDY, UNROUTE, AnyRedis, connect, slot_groups

__all__ = ["MAX_CONNECTIONS", "RedisDispatcher"]

logger = logging.getLogger("durable.dispatch")


# Connection lost, timeouts, LOADING, READONLY, a cluster without a reachable node...
_REDIS_ERRORS = (RedisError, RedisClusterException, OSError)
_STICKY_STREAM_TTL = 60  # seconds (at least) a dead worker's sticky stream outlives it
_TIDY_EVERY = 1.0  # seconds (at least) between two tidy passes of one consumer's streams


@dataclass
class _Consumer:
    """One worker identity's read-but-unclaimed hints (pending under its name in Redis)."""

    backlog: list[Hint] = field(default_factory=lambda: list[Hint]())
    streams: set[str] = field(default_factory=lambda: set[str]())  # it ever read
    # what it hosts now (workflows, actions), and the streams it reads for that
    hosts: tuple[frozenset[str], frozenset[str]] | None = None
    reading: list[str] = field(default_factory=lambda: list[str]())
    reclaimed_at: float = float("-inf")
    tidied_at: float = float("-inf")
    alive_at: float = float("-inf")
    cursors: dict[str, Any] = field(default_factory=lambda: dict[str, Any]())
    turns: Turns = field(default_factory=Turns)
    looks: Looks = field(default_factory=Looks)  # at its limited routes
    # On a cluster: the blocking XREADGROUP out on each slot (by its first stream)
    reads: dict[str, asyncio.Task[list[Hint]]] = field(
        default_factory=lambda: dict[str, asyncio.Task[list[Hint]]]())


class RedisDispatcher:
    """Dispatch through Redis Streams with consumer groups (``redis://`` / ``rediss://`` URLs;
    ``redis+cluster://host:port`` for any node of a Redis Cluster).

    ``partitions`` streams per task queue spread tenants (every process of a deployment must
    use the same number);
    ``maxlen`` bounds each stream (approximately); ``block`` caps how long one ``receive``
    waits in Redis, whatever its ``timeout``; ``route_ttl`` is how long (seconds) a sticky
    route lasts unless its worker renews it. Redis failures raise ``StoreUnavailableError``
    (with ``__cause__``); callers retry, and the store's outbox covers lost hints.
    """

    def __init__(self, store: TaskStore, url: str, *, prefix: str = "durable", partitions: int = 16,
                 maxlen: int = 100_000, block: float = 5.0, connect_timeout: float = 5.0,
                 route_ttl: float = 300.0) -> None:
        if partitions < 1 or maxlen < 1 or block <= 0 or not route_ttl >= 0.01:
            raise InvalidArgumentError("partitions >= 1, maxlen >= 1, block > 0 and "
                                       "route_ttl >= 0.01 are required")
        self.store = store
        self.url = redact(url)
        self.prefix = _keys.check_prefix(prefix)
        self.partitions = partitions
        self.maxlen = maxlen
        self.block = block
        self.route_ttl = route_ttl
        self._redis: AnyRedis = connect(url, connect_timeout, block)
        redis = self._redis
        self._reads = None if isinstance(redis, RedisCluster) else StreamReads(redis, _keys.GROUP)
        self.cluster = self._reads is None
        self._groups: set[str] = set()  # streams whose consumer group is known to exist
        self._consumers: dict[str, _Consumer] = {}
        self._route = self._redis.register_script(ROUTE)
        self._unroute = self._redis.register_script(UNROUTE)
        self._tidy = self._redis.register_script(TIDY)
        # Concurrent publishes go out together, and acks with the routes of ended executions
        # (entries to XACK, keys to delete), one round trip per batch.
        self._publishes: Batcher[tuple[Sequence[TaskRef], bool], None] = Batcher(
            self._publish_many, self._publish_one, shared_errors=(StoreUnavailableError,))
        self._acks: Batcher[tuple[list[tuple[str, bytes]], list[str]], None] = Batcher(
            self._ack_many, self._ack_now, shared_errors=(StoreUnavailableError,))

    def __repr__(self) -> str:
        return f"<RedisDispatcher {self.url} prefix={self.prefix!r}>"

    # ---- publishing ---------------------------------------------------------------------

    async def publish(self, refs: Sequence[TaskRef], *, sticky: bool = True) -> None:
        """XADD one hint per ref (after the store committed the tasks).

        A workflow hint goes to the sticky stream of the worker that caches the execution
        while that worker is alive, else (and always with ``sticky=False``: the outbox's
        hints for tasks nobody claimed) to its partition's stream. Concurrent publishes are
        sent together.
        """
        if refs:
            await self._publishes.submit((refs, sticky))

    async def _publish_many(self, calls: Sequence[tuple[Sequence[TaskRef], bool]]) -> list[None]:
        await self._publish_now([(ref, sticky) for refs, sticky in calls for ref in refs])
        return [None] * len(calls)

    async def _publish_one(self, call: tuple[Sequence[TaskRef], bool]) -> None:
        await self._publish_now([(ref, call[1]) for ref in call[0]])

    async def _publish_now(self, refs: Sequence[tuple[TaskRef, bool]]) -> None:
        with self._unavailable():
            owners = await self._owners([ref for ref, sticky in refs if sticky and ref.kind == "w"])
            plain: list[TaskRef] = []
            routed: dict[str, list[TaskRef]] = {}
            for ref, _ in refs:
                owner = owners.get((ref.tenant, ref.workflow_id)) if ref.kind == "w" else None
                if owner is None:
                    plain.append(ref)
                else:
                    routed.setdefault(owner, []).append(ref)
            pipe = self._xadd(plain)
            calls = [([_keys.alive(self.prefix, owner),
                       *[_keys.sticky_stream(self.prefix, owner, self.partition_of(ref))
                         for ref in hints]],
                      list[bytes | int]([_keys.HINT_FIELD, self.maxlen,
                                         *[encode_ref(ref) for ref in hints]]))
                     for owner, hints in routed.items()]
            if self.cluster:  # scripts alone (they load themselves on each node)
                done = await asyncio.gather(pipe.execute(), *(
                    self._route(keys=keys, args=args) for keys, args in calls))
                went = list(done[1:])
            else:  # EVALSHA in the pipeline (the pipeline loads the script if needed)
                for keys, args in calls:
                    await self._route(keys=keys, args=args, client=pipe)
                went = (await pipe.execute())[len(plain):]
            gone = [ref for hints, ok in zip(routed.values(), went) if not ok for ref in hints]
            if gone:  # their workers are gone: to the partitions' streams
                await self._xadd(gone).execute()

    def _xadd(self, refs: Sequence[TaskRef]) -> Any:
        """A pipeline that adds the hints of ``refs`` to their streams."""
        pipe = self._redis.pipeline(transaction=False)
        for ref in refs:
            pipe.xadd(self.stream_of(ref), {_keys.HINT_FIELD: encode_ref(ref)},
                      maxlen=self.maxlen, approximate=True)
        return pipe

    async def _owners(self, refs: Sequence[TaskRef]) -> dict[tuple[str, str], str]:
        """The workers the sticky routes of ``refs``' executions name (one MGET; one per slot
        on a cluster)."""
        if not refs:
            return {}
        keys = [_keys.route(self.prefix, ref.tenant, ref.workflow_id) for ref in refs]
        found = await (self._redis.mget_nonatomic(keys) if isinstance(self._redis, RedisCluster)
                       else self._redis.mget(keys))
        return {(ref.tenant, ref.workflow_id): text(owner)
                for ref, owner in zip(refs, found) if owner is not None}

    async def stick(self, owner: str, tenant: str, workflow_id: str, *, keep: bool) -> float:
        """Route the execution's workflow hints to ``owner`` for ``route_ttl`` seconds
        (``keep``; the seconds are returned), or stop routing them to ``owner``."""
        key = _keys.route(self.prefix, tenant, workflow_id)
        with self._unavailable():
            if keep:
                await self._redis.set(key, owner, px=max(int(self.route_ttl * 1000), 1))
            else:
                await self._unroute(keys=[key], args=[owner])
        return self.route_ttl

    async def forget(self, tenant: str, workflow_id: str) -> None:
        """The execution ended: remove its route, whichever worker it names (with the acks
        sent at the same time)."""
        await self._acks.submit(([], [_keys.route(self.prefix, tenant, workflow_id)]))

    async def forget_worker(self, owner: str) -> None:
        """Worker ``owner`` died: drop its alive key, so that hints go to the partition
        streams, and publish again the hints of its sticky streams from the oldest it had not
        acknowledged (or read) on (a few done ones too: claiming skips those)."""
        streams = self._sticky_streams(owner)
        with self._unavailable():
            pipe = self._redis.pipeline(transaction=False)
            pipe.delete(_keys.alive(self.prefix, owner))
            for stream in streams:
                pipe.xpending(stream, _keys.GROUP)
                pipe.xinfo_groups(stream)
            replies = (await pipe.execute(raise_on_error=False))[1:]
            pipe = self._redis.pipeline(transaction=False)
            for stream, pending, groups in zip(streams, replies[::2], replies[1::2]):
                if isinstance(groups, Exception) or not groups:
                    continue  # no such sticky stream: nothing was routed to it
                start = "(" + text(groups[0]["last-delivered-id"])
                if not isinstance(pending, Exception) and pending["pending"]:
                    start = text(pending["min"])
                pipe.xrange(stream, start, "+")
            rows: list[list[Any] | None] = await pipe.execute()
        entries = [entry for found in rows for entry in found or []]
        refs = list(dict.fromkeys([r for entry in entries if (r := ref_of(entry[1])) is not None]))
        if refs:
            await self.publish(refs)

    async def retire(self, owner: str) -> None:
        """Worker ``owner`` stops: once its blocking reads are in (each ends within its
        block), publish again the hints it read and did not claim (past sticky routes) and
        acknowledge them: none stays pending under its name until taken over."""
        consumer = self._consumers.get(owner)
        if consumer is None:
            return
        if consumer.reads:  # a read stuck past its block is left to close() to cancel
            await asyncio.wait(consumer.reads.values(), timeout=self.block + 1.0)
        try:
            consumer.backlog += harvest(consumer.reads, consumer.backlog)
        except Exception:  # noqa: BLE001 - a read that failed read nothing to hand back
            logger.debug("a read of %s failed as it stopped", owner, exc_info=True)
        hints, consumer.backlog = consumer.backlog, []
        refs = list(dict.fromkeys(h.ref for h in hints if h.ref is not None))
        with self._unavailable():
            if refs:
                await self.publish(refs, sticky=False)
            await self._xack([(h.stream, h.entry) for h in hints])

    def _sticky_streams(self, owner: str) -> list[str]:
        return [_keys.sticky_stream(self.prefix, owner, p) for p in range(self.partitions)]

    def partition_of(self, ref: TaskRef) -> int:
        """The partition of ``ref``'s streams: a hash of its tenant (``_keys.partition``)."""
        return _keys.partition(ref.tenant, self.partitions)

    def stream_of(self, ref: TaskRef) -> str:
        """The stream that carries ``ref``."""
        p = self.partition_of(ref)
        if ref.kind == "w":
            return _keys.workflow_stream(self.prefix, p, ref.name)
        return _keys.action_stream(self.prefix, ref.name, p)

    def streams_for(self, spec: ClaimSpec) -> list[str]:
        """Every stream a worker hosting ``spec``'s workflows and actions reads."""
        parts = range(self.partitions)
        streams = [*self._sticky_streams(spec.owner),
                   *(_keys.workflow_stream(self.prefix, p, name)
                     for name in ("", *sorted(spec.workflows)) for p in parts)
                   ] if spec.workflows else []
        return streams + [_keys.action_stream(self.prefix, name, p)
                          for name in sorted(spec.actions) for p in parts]

    # ---- receiving ----------------------------------------------------------------------

    async def receive(self, spec: ClaimSpec, *, limit: int, timeout: float,
                      kinds: Mapping[str, int] | None = None) -> list[Claim]:
        """Read hints (waiting at most ``timeout`` s), take over stale ones, claim their tasks."""
        consumer = self._consumers.setdefault(spec.owner, _Consumer())
        if consumer.hosts != (spec.workflows, spec.actions):  # worked out once, not per call
            consumer.hosts, consumer.reading = (spec.workflows, spec.actions), \
                self.streams_for(spec)
            consumer.streams.update(consumer.reading)
        streams = consumer.reading
        if not streams or limit <= 0:
            await asyncio.sleep(max(timeout, 0.0))
            return []
        if spec.limits and (soon := consumer.looks.wait(time.time())) is not None:
            timeout = min(timeout, soon)
        with self._unavailable():
            try:
                await self._fill(consumer, spec, streams, limit, timeout, kinds)
            except _StreamsLost:
                # The streams vanished (FLUSHALL, a restart without persistence): recreate
                # the groups; the outbox re-announces the hints that were lost.
                logger.warning("Redis at %s lost the dispatch streams; recreating them", self.url)
                self._groups.clear()
                await self._fill(consumer, spec, streams, limit, 0.0, kinds)
        return await self._claim(consumer, spec, limit, kinds)

    async def _fill(self, consumer: _Consumer, spec: ClaimSpec, streams: list[str], limit: int,
                    timeout: float, kinds: Mapping[str, int] | None) -> None:
        await self._ensure_groups(streams)
        now = time.monotonic()
        if spec.workflows and now - consumer.alive_at >= spec.lease / 3:
            consumer.alive_at = now
            await self._keep_alive(spec)
        if now - consumer.reclaimed_at >= spec.lease / 2:
            consumer.reclaimed_at = now
            await self._reclaim(consumer, spec, streams, limit)
        if now - consumer.tidied_at >= max(spec.lease, _TIDY_EVERY):
            consumer.tidied_at = now
            idle = int(max(spec.lease * 4, 2.0) * 1000)
            await asyncio.gather(*(self._tidy(keys=group, args=[_keys.GROUP, idle])
                                   for group in slot_groups(streams, self.cluster)))
        consumer.backlog += harvest(consumer.reads, consumer.backlog)
        # the hints this call may take (not those of a kind it takes none of)
        ready = consumer.backlog if kinds is None else [
            h for h in consumer.backlog if h.ref is None or room_for(h.ref.kind, 1, kinds)]
        if len(ready) >= limit:
            # Enough to claim, but read the streams that have nothing in the backlog: another
            # tenant's hints there are taken in the next round (``_fair``).
            held = {h.stream for h in consumer.backlog}
            consumer.backlog += await self._read_now(
                consumer, spec.owner, [s for s in streams if s not in held], limit)
        elif ready or not (block := self._block_ms(timeout)):
            consumer.backlog += await self._read_now(consumer, spec.owner, streams, limit)
        elif not self.cluster:
            consumer.backlog += await self._read(spec.owner, streams, limit, block)
        else:
            await self._read_blocking(consumer, spec.owner, streams, limit, block)

    async def _keep_alive(self, spec: ClaimSpec) -> None:
        """Say this worker is alive (for a lease), so hints are routed to its sticky stream."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(_keys.alive(self.prefix, spec.owner), 1, px=max(int(spec.lease * 1000), 1))
        # Read by this worker only: once it is gone, the outbox re-announces what it held.
        for stream in self._sticky_streams(spec.owner):
            pipe.expire(stream, max(int(spec.lease * 10), _STICKY_STREAM_TTL))
        await pipe.execute()

    async def _ensure_groups(self, streams: list[str]) -> None:
        """Create the missing groups from id 0, so hints published before are not skipped."""
        missing = [s for s in streams if s not in self._groups]
        if not missing:
            return
        pipe = self._redis.pipeline(transaction=False)
        for stream in missing:
            pipe.xgroup_create(stream, _keys.GROUP, id="0", mkstream=True)
        for stream, result in zip(missing, await pipe.execute(raise_on_error=False)):
            if isinstance(result, Exception) and not _is(result, "BUSYGROUP"):
                raise result
            self._groups.add(stream)

    def _block_ms(self, timeout: float) -> int | None:
        ms = int(min(timeout, self.block) * 1000)
        return ms if ms > 0 else None  # BLOCK 0 would wait forever

    async def _read(self, owner: str, streams: list[str], limit: int,
                    block: int | None) -> list[Hint]:
        """One XREADGROUP of ``streams`` (of one slot on a cluster)."""
        try:
            reply = await (self._reads.read(owner, streams, limit, block) if self._reads else
                           self._redis.xreadgroup(_keys.GROUP, owner, dict.fromkeys(streams, ">"),
                                                  count=limit, block=block))
        except ResponseError as exc:  # Redis >= 7 unblocks readers of a deleted stream
            raise _StreamsLost() if _is(exc, "NOGROUP") or _is(exc, "UNBLOCKED") else exc
        return hints_of(reply)

    async def _read_now(self, consumer: _Consumer, owner: str, streams: list[str],
                        limit: int) -> list[Hint]:
        """Read ``streams`` without waiting: one XREADGROUP (per slot on a cluster, but for the
        slots that have a blocking read out)."""
        groups = [g for g in slot_groups(streams, self.cluster) if g[0] not in consumer.reads]
        if len(groups) <= 1:
            return await self._read(owner, groups[0], limit, None) if groups else []
        pipe = self._redis.pipeline(transaction=False)
        for group in groups:
            pipe.xreadgroup(_keys.GROUP, owner, dict.fromkeys(group, ">"), count=limit)
        return [hint for reply in await _execute(pipe) for hint in hints_of(reply)]

    async def _read_blocking(self, consumer: _Consumer, owner: str, streams: list[str],
                             limit: int, block: int) -> None:
        """On a cluster: a blocking XREADGROUP per slot (unless one is out already), until
        the first answers or ``block`` ms pass; the others stay out for later calls."""
        for group in slot_groups(streams, self.cluster):
            if group[0] not in consumer.reads:
                consumer.reads[group[0]] = asyncio.create_task(
                    self._read(owner, group, limit, block))
        await asyncio.wait(consumer.reads.values(), timeout=block / 1000 + 0.05,
                           return_when=asyncio.FIRST_COMPLETED)
        consumer.backlog += harvest(consumer.reads, consumer.backlog)

    async def _reclaim(self, consumer: _Consumer, spec: ClaimSpec, streams: list[str],
                       limit: int) -> None:
        """XAUTOCLAIM entries pending longer than a lease: their consumer has stopped."""
        pipe = self._redis.pipeline(transaction=False)
        for stream in streams:
            pipe.execute_command("XAUTOCLAIM", stream, _keys.GROUP, spec.owner,  # pyright: ignore[reportUnknownMemberType]
                                 max(int(spec.lease * 1000), 1),
                                 consumer.cursors.get(stream, "0-0"), "COUNT", max(limit, 10),
                                 "JUSTID")
        known = {(h.stream, h.entry) for h in consumer.backlog}
        taken: list[tuple[str, bytes]] = []
        for stream, (cursor, ids, *_) in zip(streams, await _execute(pipe)):
            consumer.cursors[stream] = cursor
            taken += [(stream, entry) for entry in ids if (stream, entry) not in known]
        if taken:
            logger.info("took over %d dispatch hints left pending by stopped workers", len(taken))
            consumer.backlog += await self._fetch(taken)

    async def _fetch(self, entries: list[tuple[str, bytes]]) -> list[Hint]:
        # JUSTID, then XRANGE: on Redis 6.2 a plain XAUTOCLAIM reports a trimmed entry as nil,
        # without its id, so it could never be acknowledged.
        pipe = self._redis.pipeline(transaction=False)
        for stream, entry in entries:
            pipe.xrange(stream, entry, entry)
        rows = await _execute(pipe)
        return [Hint(stream, entry, ref_of(row[0][1]) if row else None)
                for (stream, entry), row in zip(entries, rows)]

    async def _claim(self, consumer: _Consumer, spec: ClaimSpec, limit: int,
                     kinds: Mapping[str, int] | None) -> list[Claim]:
        """Claim the tasks named by up to ``limit`` distinct hints (``kinds``: at most so many
        of each kind); acknowledge the stale ones."""
        taken, junk, consumer.backlog = consumer.turns.take(consumer.backlog, limit, kinds)
        refs = [hints[0].ref for hints in taken.values() if hints[0].ref is not None]
        # Limited actions are claimed under their limits when ``Looks`` says (a hint their
        # limit held back is acknowledged: a later look finds the task again).
        looks, limited = consumer.looks, list[str]()
        if spec.limits:
            for ref in refs:
                if ref.kind == "a" and ref.name in spec.limits:
                    looks.mark(ref.name)
            refs = [r for r in refs if r.kind != "a" or r.name not in spec.limits]
            if kinds is None or room_for("a", limit, kinds) > sum(r.kind == "a" for r in refs):
                limited = looks.due(spec.limits, time.time())
        if not taken and not junk and not limited:
            return []
        try:
            workflows, actions = await self.store.claim_refs(
                refs, spec.owner, workflows=spec.workflows, actions=spec.actions,
                lease=spec.lease, now=time.time(),
                history_after=spec.history_after) if refs else ([], [])
            if limited:
                room = room_for("a", limit - len(workflows), kinds) - len(actions)
                if kinds is None:  # without a cap of its own, a due look claims one at least
                    room = max(room, 1)
                if room > 0:
                    actions += await claim_actions(self.store, limited, spec.limits, spec.owner,
                                                   lease=spec.lease, now=time.time(), limit=room,
                                                   looks=looks)
        except BaseException:  # keep them for the next call (they are pending under our name)
            consumer.backlog[:0] = [h for hints in taken.values() for h in hints]
            raise
        claims: list[Claim] = []
        tasks: list[WorkflowTask | ActionTask] = [*workflows, *actions]
        for task in tasks:
            hints = taken.pop(task_key(task), [])
            claims.append(Claim(task, tuple((h.stream, h.entry) for h in hints)))
        await self._ack_quietly(junk + [h for hints in taken.values() for h in hints])
        return claims

    # ---- acknowledging and closing ------------------------------------------------------

    async def ack(self, claims: Sequence[Claim]) -> None:
        """XACK the claims' entries: their tasks' outcomes are committed to the store.

        Concurrent acks are sent together. An ended action's limited route is looked at
        on the next claim (its slot is free)."""
        for claim in claims:
            if isinstance(claim.task, ActionTask):
                ended = route(claim.task.name, claim.task.queue)
                for consumer in self._consumers.values():
                    consumer.looks.mark(ended)
        entries = [entry for claim in claims for entry in (claim.token or ())]
        if entries:
            await self._acks.submit((entries, []))

    async def _ack_many(self, calls: Sequence[tuple[list[tuple[str, bytes]], list[str]]]
                        ) -> list[None]:
        await self._ack_now(([e for entries, _ in calls for e in entries],
                             [key for _, keys in calls for key in keys]))
        return [None] * len(calls)

    async def _ack_now(self, call: tuple[list[tuple[str, bytes]], list[str]]) -> None:
        with self._unavailable():
            await self._xack(*call)

    async def _ack_quietly(self, hints: list[Hint]) -> None:
        try:
            await self._xack([(h.stream, h.entry) for h in hints])
        except _REDIS_ERRORS:  # they stay pending and are taken over later
            logger.debug("could not acknowledge %d stale hints", len(hints), exc_info=True)

    async def _xack(self, entries: Iterable[tuple[str, bytes]], keys: Sequence[str] = ()
                    ) -> None:
        """XACK ``entries`` and delete ``keys``, in one round trip."""
        by_stream: dict[str, list[bytes]] = {}
        for stream, entry in entries:
            by_stream.setdefault(stream, []).append(entry)
        if not by_stream and not keys:
            return
        pipe = self._redis.pipeline(transaction=False)
        for stream, ids in by_stream.items():
            pipe.xack(stream, _keys.GROUP, *ids)
        for key in keys:  # one by one: on a cluster, keys of several slots
            pipe.delete(key)
        await _execute(pipe)

    async def close(self) -> None:
        """Remove this process's consumers that hold nothing, and close the connection pool."""
        await self._publishes.close()
        await self._acks.close()
        reads = [task for c in self._consumers.values() for task in c.reads.values()]
        for task in reads:  # entries they read stay pending under the consumer: taken over
            task.cancel()
        await asyncio.gather(*reads, return_exceptions=True)
        try:
            await asyncio.wait_for(self._forget_consumers(), 2.0)
        except _REDIS_ERRORS:
            logger.debug("could not remove the consumers of %r", self, exc_info=True)
        finally:
            await self._redis.aclose()

    async def _forget_consumers(self) -> None:
        """XGROUP DELCONSUMER for consumers with no pending entries (each worker start makes
        one; a consumer with pending entries stays, so that they are taken over)."""
        pairs = [(s, owner) for owner, c in self._consumers.items() for s in sorted(c.streams)]
        if not pairs:
            return
        pipe = self._redis.pipeline(transaction=False)
        for stream, _ in pairs:
            pipe.xpending(stream, _keys.GROUP)
        summaries = await pipe.execute(raise_on_error=False)
        pipe = self._redis.pipeline(transaction=False)
        for (stream, owner), summary in zip(pairs, summaries):
            if not isinstance(summary, Exception) and not any(
                    text(c["name"]) == owner and c["pending"] for c in summary["consumers"]):
                pipe.xgroup_delconsumer(stream, _keys.GROUP, owner)
        await pipe.execute(raise_on_error=False)
        self._consumers.clear()

    @contextmanager
    def _unavailable(self) -> Generator[None]:
        try:
            yield
        except _REDIS_ERRORS as exc:  # connection lost, LOADING...
            raise StoreUnavailableError(
                f"Redis at {self.url} failed ({type(exc).__name__}: {exc}); dispatch resumes "
                "when it answers again, and the store's outbox re-announces lost hints",
                url=self.url) from exc


class _StreamsLost(Exception):
    """A consumer group is missing: Redis was flushed or restarted without its data."""


async def _execute(pipe: Any) -> list[Any]:
    """Run a pipeline; raise its first error reply unchanged (redis-py rewrites the message)."""
    results: list[Any] = await pipe.execute(raise_on_error=False)
    for result in results:
        if isinstance(result, ResponseError):
            raise _StreamsLost() if _is(result, "NOGROUP") else result
    return results


def _is(exc: Exception, code: str) -> bool:
    """Whether a Redis error reply carries ``code`` (its first word, by Redis convention)."""
    return str(exc).split(" ", 1)[0] == code
