"""``Server``: fires due timers, re-dispatches what the outbox hands out, starts due schedules,
releases dead workers' tasks, deletes expired closed executions, serves health and metrics.

Five loops and an HTTP site, all owned by ``run()``. Each loop runs one chore of the
``Housekeeper`` (the same the embedded dispatcher runs) and publishes the hints it returns to
the client's dispatcher:

* timers: each due timer's ``TimerFired`` is recorded once;
* outbox: claimable tasks whose last dispatch is older than ``redispatch_after`` (a hint lost
  in Redis, a dead worker's expired lease, a due retry or release) are announced again, and a
  task that stays unclaimed less and less often (a backlog is not announced non-stop); first,
  once a second at most, the store's planner is shown queues that grew
  (``Store.refresh_statistics``);
* schedules: the runs of due schedules are started (each due time once, with a workflow id
  derived from it);
* workers: the tasks of workers whose process died (or whose heartbeat is older than
  ``liveness_timeout``) are released at once, not when their leases run out
  (``durable._worker._liveness``; every worker does the same);
* retention: closed executions past their retention are deleted with every row of theirs, a
  batch at a time, every ``gc_every`` seconds while there is no backlog (``durable._retention``);
  and once a minute at most, a task table whose indexes churn left mostly empty pages has them
  rebuilt (``Store.rebuild_bloated_indexes``).

Any number of servers may run on one store: the store hands concurrent callers disjoint sets
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so the server takes no locks of its own. Hints are
only hints: publishing one twice is harmless, losing one is repaired by the outbox.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from datetime import timedelta
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from aiohttp import web

from durable._cancelling import raise_if_cancelling
from durable._dispatch._housekeeping import SCHEDULE_POLL, Housekeeper
from durable._retention import DEFAULT_RETENTION, GC_EVERY
from durable._stores import Store, TaskRef
from durable._worker._liveness import CHECK_EVERY, LIVENESS_TIMEOUT
from durable._validate import check_retention
from durable.errors import DurableError, InvalidArgumentError, ServerStoppedError

from ._http import is_loopback, make_app
from ._metrics import Metrics

if TYPE_CHECKING:
    from durable import Client

__all__ = ["Server"]

logger = logging.getLogger("durable.server")

T = TypeVar("T")

FIRST_BACKOFF = 0.1  # seconds after the first failed iteration; doubles up to MAX_BACKOFF
MAX_BACKOFF = 2.0


@dataclass
class _LoopState:
    """What one loop last saw; ``/healthz`` reports it."""

    name: str
    quiet: float = 0.0  # seconds the loop may sleep between round trips without being stale
    last_ok: float | None = None  # time.monotonic() of the last successful store round trip
    store_error: str | None = None  # why the last store call failed; None once one succeeds
    publish_error: str | None = None  # why the last publish failed; None once one succeeds
    # Invariant: hints the store handed out that are not published yet are published before the
    # loop asks the store for more (the outbox would repeat them anyway, but later).
    unpublished: list[TaskRef] = field(default_factory=lambda: list[TaskRef]())


class Server:
    """Fires durable timers, re-dispatches lost or expired tasks and starts due schedules.

    ``await server.run()`` runs until :meth:`shutdown` or cancellation; ``async with
    Server(...)`` runs it in the background for the block (``port``, when given as 0, is the
    bound port once it started). ``interval`` is how long an idle loop sleeps, ``batch`` how
    many timers or tasks one store call takes, and ``redispatch_after`` how long a claimable
    task may sit without a fresh hint before it is announced again (then again after as long
    as it has waited, at most a minute: ``_backlog.announced_mark``). The schedules loop
    sleeps until the next schedule is due, at most ``schedule_poll`` seconds (how soon a
    schedule created elsewhere is seen). A worker whose process died has its tasks released
    within a fraction of a second, one that sent no heartbeat for ``liveness_timeout``
    seconds (its host vanished) then. ``metrics_token`` (a secret) unlocks the details of
    ``/healthz`` and guards ``/metrics``; without it, the details are shown only when ``host``
    is a loopback address (see ``durable_server._http``). Closed executions are deleted once
    closed for their retention: their workflow's, else their tenant's, else ``retention``
    (seconds or a ``timedelta``, default 30 days; None: kept unless a setting says otherwise),
    looked for every ``gc_every`` seconds.
    """

    def __init__(self, client: Client, *, interval: float = 0.1, redispatch_after: float = 2.0,
                 batch: int = 500, host: str = "127.0.0.1", port: int = 8080,
                 identity: str | None = None, clock: Callable[[], float] | None = None,
                 schedule_poll: float = SCHEDULE_POLL, metrics_token: str | None = None,
                 liveness_timeout: float = LIVENESS_TIMEOUT,
                 retention: float | timedelta | None = DEFAULT_RETENTION,
                 gc_every: float = GC_EVERY) -> None:
        if interval <= 0 or redispatch_after < 0 or batch < 1 or port < 0 or schedule_poll <= 0 \
                or not liveness_timeout > 0 or not gc_every > 0:
            raise InvalidArgumentError("interval > 0, redispatch_after >= 0, batch >= 1, "
                                       "port >= 0, schedule_poll > 0, liveness_timeout > 0 "
                                       "and gc_every > 0 are required")
        if metrics_token is not None and (type(metrics_token) is not str or not metrics_token):
            raise InvalidArgumentError("metrics_token is a non-empty str, or None",
                                       parameter="metrics_token")
        self.metrics_token = metrics_token
        self.liveness_timeout = liveness_timeout
        self.client = client
        self.interval = interval
        self.host = host
        self.port = port
        self.identity = identity or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.clock = clock or client.clock  # epoch seconds; the client's (time.time) by default
        self.housekeeper = Housekeeper(client.store, batch=batch,
                                       redispatch_after=redispatch_after,
                                       schedule_poll=schedule_poll,
                                       owner=f"server:{self.identity}", clock=self.clock,
                                       retention=check_retention(retention), gc_every=gc_every)
        self.stale_after = max(5.0, 3 * interval)  # no store round trip for this long: unhealthy
        self.metrics = Metrics(up=lambda: 1.0 if self.health()[0] else 0.0)
        self._loops = {name: _LoopState(name) for name in ("timers", "outbox", "schedules",
                                                                "workers")}
        self._loops["retention"] = _LoopState("retention", quiet=gc_every)
        self._stopping = asyncio.Event()
        self._settled = asyncio.Event()  # set once started, or once run() ended without starting
        self._started = False
        self._background: asyncio.Task[None] | None = None

    @property
    def store(self) -> Store:
        """The client's store."""
        return self.client.store

    @property
    def batch(self) -> int:
        """How many timers or tasks one store call takes."""
        return self.housekeeper.batch

    @property
    def redispatch_after(self) -> float:
        """Seconds a claimable task may wait without a fresh hint before it is announced again."""
        return self.housekeeper.redispatch_after

    @property
    def schedule_poll(self) -> float:
        """The longest the schedules loop sleeps (how soon a schedule created elsewhere is seen)."""
        return self.housekeeper.schedule_poll

    @property
    def url(self) -> str:
        """Where the HTTP API listens, e.g. ``http://127.0.0.1:8080``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # ---- lifecycle ----------------------------------------------------------------------

    async def run(self) -> None:
        """Serve HTTP and run the five loops until :meth:`shutdown` or cancellation."""
        self._started = False
        self._settled.clear()
        app = make_app(self.health, self.metrics, loopback=is_loopback(self.host),
                       token=self.metrics_token, refresh=self._read_backlog)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        try:
            await runner.setup()
            await web.TCPSite(runner, self.host, self.port).start()
            self.port = runner.addresses[0][1]
            self._started = True
            self._settled.set()
            logger.info("durable server %s listening on %s", self.identity, self.url)
            async with asyncio.TaskGroup() as group:
                for state, step in ((self._loops["timers"], self._fire_timers),
                                    (self._loops["outbox"], self._redispatch),
                                    (self._loops["schedules"], self._run_schedules),
                                    (self._loops["workers"], self._release_dead_workers),
                                    (self._loops["retention"], self._collect_garbage)):
                    group.create_task(self._loop(state, step), name=f"{state.name} loop")
        finally:
            self._settled.set()
            self._stopping.clear()
            await asyncio.shield(runner.cleanup())

    async def wait_started(self) -> None:
        """Return once the HTTP site is bound and the loops run.

        Raises ``ServerStoppedError`` if ``run()`` ended first (``run()`` raises why).
        """
        await self._settled.wait()
        if not self._started:
            raise ServerStoppedError(f"durable server {self.identity} stopped before it started")

    def shutdown(self) -> None:
        """Stop the loops (after the store call in flight) and close the HTTP site."""
        self._stopping.set()

    async def __aenter__(self) -> Server:
        self._started = False
        self._settled.clear()
        self._background = asyncio.create_task(self.run(), name=f"durable server {self.identity}")
        try:
            await self.wait_started()
        except ServerStoppedError:
            await self._background  # raises why it could not start (a port in use, ...)
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.shutdown()
        if self._background is not None:
            await self._background

    def __await__(self) -> Generator[Any, None, None]:
        return self.run().__await__()

    # ---- health -------------------------------------------------------------------------

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Whether every loop's last store round trip succeeded recently, and the details."""
        now = time.monotonic()
        problems = [p for state in self._loops.values() if (p := self._problem(state, now))]
        loops = {state.name: {
            "last_ok_seconds_ago": None if state.last_ok is None else round(now - state.last_ok, 3),
            "store_error": state.store_error,
            "publish_error": state.publish_error,
            "unpublished": len(state.unpublished),
        } for state in self._loops.values()}
        body: dict[str, Any] = {"status": "unavailable" if problems else "ok",
                                "identity": self.identity, "loops": loops}
        if problems:
            body["reason"] = "; ".join(problems)
        return not problems, body

    def _problem(self, state: _LoopState, now: float) -> str | None:
        if state.store_error is not None:
            return f"{state.name}: store unavailable: {state.store_error}"
        if state.last_ok is None:
            return f"{state.name}: no store round trip yet"
        if now - state.last_ok > self.stale_after + state.quiet:
            return f"{state.name}: no store round trip for {now - state.last_ok:.1f}s"
        return None

    async def _read_backlog(self) -> None:
        """The queue depths and due timers, for a scrape (stale values if the store fails)."""
        try:
            self.metrics.backlog(await self.store.backlog(now=self.clock()))
        except Exception as exc:  # the scrape still answers; /healthz says what is wrong
            logger.warning("durable server %s: could not read the backlog (%s)", self.identity,
                           _describe(exc))

    # ---- loops --------------------------------------------------------------------------

    async def _loop(self, state: _LoopState, step: Callable[[_LoopState], Awaitable[float]]) -> None:
        """Run ``step`` until shutdown; it returns how long to wait. Failures back off, never end."""
        failures = 0
        while not self._stopping.is_set():
            raise_if_cancelling()
            began = time.perf_counter()
            try:
                delay = await step(state)
                failures = 0
            except Exception as exc:  # the store or the dispatcher is down: back off, try again
                failures += 1
                delay = min(FIRST_BACKOFF * 2 ** (failures - 1), MAX_BACKOFF)
                self.metrics.errors.labels(loop=state.name).inc()
                logger.warning("durable server %s: %s loop failed (%s); retrying in %.1fs",
                               self.identity, state.name, _describe(exc), delay,
                               exc_info=not isinstance(exc, DurableError))
            self.metrics.loop_seconds.labels(loop=state.name).observe(time.perf_counter() - began)
            if delay > 0:
                await self._pause(delay)

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if shutdown is asked for."""
        try:
            async with asyncio.timeout(seconds):
                await self._stopping.wait()
        except TimeoutError:
            pass

    async def _fire_timers(self, state: _LoopState) -> float:
        """Fire a batch of due timers and publish their workflows' hints; the wait until the next."""
        if await self._publish_leftovers(state):
            return 0.0
        refs = await self._from_store(state, self.housekeeper.fire_timers, self.clock())
        self.metrics.timers_fired.inc(len(refs))
        await self._publish(state, refs)
        if len(refs) >= self.batch:  # more may be due: go on at once
            return 0.0
        return await self._from_store(state, self.housekeeper.until_next_timer, self.clock(),
                                      at_most=self.interval)

    async def _redispatch(self, state: _LoopState) -> float:
        """Publish the outbox's hints for claimable tasks not dispatched lately; the wait."""
        if await self._publish_leftovers(state):
            return 0.0
        await self._from_store(state, self.housekeeper.refresh_statistics_if_due, self.clock())
        refs = await self._from_store(state, self.housekeeper.redispatch, self.clock())
        self.metrics.tasks_redispatched.inc(len(refs))
        await self._publish(state, refs)
        return 0.0 if len(refs) >= self.batch else self.interval

    async def _run_schedules(self, state: _LoopState) -> float:
        """Process the due schedules and publish the runs' hints; the wait until the next."""
        if await self._publish_leftovers(state):
            return 0.0
        refs = await self._from_store(state, self.housekeeper.run_schedules, self.clock())
        self.metrics.schedule_runs.inc(len(refs))
        await self._publish(state, refs)
        return max(self.housekeeper.next_schedule_pass - self.clock(), 0.0)

    async def _release_dead_workers(self, state: _LoopState) -> float:
        """Release the tasks of dead workers and publish their hints; the wait until the next
        look."""
        if await self._publish_leftovers(state):
            return 0.0
        released = await self._from_store(state, self.store.release_dead_workers,
                                          timeout=self.liveness_timeout, now=self.clock())
        state.unpublished = released.refs  # published even if re-routing fails
        self.metrics.leases_reclaimed.inc(len(released.refs))
        for owner in released.workers:
            logger.warning("worker %s stopped without finishing its tasks: they are released",
                           owner)
            await self.client.dispatcher.forget_worker(owner)
        await self._publish_leftovers(state)
        return CHECK_EVERY

    async def _collect_garbage(self, state: _LoopState) -> float:
        """Delete a batch of expired closed executions, and rebuild the queues' indexes that
        churn left mostly empty (``Housekeeper.rebuild_indexes_if_due``); the wait until the
        next pass."""
        deleted = await self._from_store(state, self.housekeeper.collect_garbage, self.clock())
        self.metrics.executions_deleted.inc(len(deleted))
        for table in await self._from_store(state, self.housekeeper.rebuild_indexes_if_due,
                                            self.clock()):
            logger.info("rebuilt the indexes of %s (mostly empty pages)", table)
        return max(self.housekeeper.next_gc_pass - self.clock(), 0.0)

    async def _from_store(self, state: _LoopState, call: Callable[..., Awaitable[T]],
                          *args: Any, **kwargs: Any) -> T:
        """``await call(*args, **kwargs)``, recording the outcome for ``/healthz``."""
        try:
            result = await call(*args, **kwargs)
        except Exception as exc:
            state.store_error = _describe(exc)
            raise
        state.last_ok, state.store_error = time.monotonic(), None
        return result

    async def _publish(self, state: _LoopState, refs: list[TaskRef]) -> None:
        state.unpublished = refs
        await self._publish_leftovers(state)

    async def _publish_leftovers(self, state: _LoopState) -> bool:
        """Publish the hints a failed publish left behind; whether there were any."""
        if not state.unpublished:
            return False
        try:
            # The outbox's hints are for tasks nobody claimed: past any sticky route.
            await self.client.dispatcher.publish(state.unpublished,
                                                 sticky=state.name != "outbox")
        except Exception as exc:
            state.publish_error = _describe(exc)
            raise
        state.unpublished, state.publish_error = [], None
        return True


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
