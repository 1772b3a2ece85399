"""Running one action attempt: call it, then record the outcome or schedule the retry."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
import time
from typing import Any, Awaitable, Callable, Final

import msgspec
from msgspec.structs import replace

from ._action_info import ActionInfo, Beats, _action_info
from .._cancelling import cancelling
from .._ports import ClientPort
from .._definitions import ActionDefinition, with_options
from .._history import ActionCompleted, ActionFailed
from .._payloads import describe_error, error_info
from .._completion import Handoff
from .._stores import ActionTask, TaskRef, workflow_ref
from .._telemetry import Telemetry
from ..errors import ActionLostError, DatabaseActionError, UnknownActionError

__all__ = ["INLINE_SLICE", "ActionTaskRunner", "check_transactional"]

_DRIVER_KINDS = {"asyncpg": True, "sqlite3": False}  # whether the action must be async def

logger = logging.getLogger("durable.worker")

_NEVER = threading.Event()  # the cancellation of an inline attempt: never set
INLINE_SLICE: Final = 0.1  # seconds an inline attempt runs before requests are looked for
_BEAT_GAP: Final = 0.2  # seconds: the least time between two recordings of heartbeat details
_decode: Final = msgspec.msgpack.Decoder().decode


class _NoLongerWanted(Exception):
    """The attempt stopped because its call was cancelled: there is nothing to record."""


class _MissedHeartbeat(TimeoutError):
    """The attempt reported no heartbeat within its action's ``heartbeat_timeout``."""


def check_transactional(defn: ActionDefinition, store: Any) -> None:
    """Raise ``DatabaseActionError`` if ``store`` cannot run database action ``defn``."""
    if not defn.transaction:
        return
    driver = getattr(store, "transaction_driver", None)
    if driver is None:
        raise DatabaseActionError(
            f"database action {defn.name!r} needs a store with transactions, and "
            f"{store.url.split(':')[0]}:// has none: use sqlite:///... or postgresql://...",
            action=defn.name, reason="no transactions")
    if _DRIVER_KINDS[driver] != defn.is_async:
        kind = "an async def taking an asyncpg.Connection" if _DRIVER_KINDS[driver] \
            else "a plain def taking a sqlite3.Connection"
        raise DatabaseActionError(
            f"database action {defn.name!r} must be {kind} on this store ({driver})",
            action=defn.name, reason="function kind")


class ActionTaskRunner:
    """Runs claimed action tasks, keeping their leases alive while they run."""

    def __init__(self, client: ClientPort, owner: str, actions: dict[str, ActionDefinition],
                 lease: float, telemetry: Telemetry | None = None) -> None:
        self.store = client.store
        self.telemetry = telemetry or Telemetry(client.store, client.clock, None)
        self.client = client
        self.clock = client.clock
        self.owner = owner
        self.actions = actions
        self.lease = lease
        # records an outcome with the workflow task it makes due, if it can (``Worker``)
        self.settle: Callable[[ActionTask, ActionCompleted | ActionFailed],
                              Awaitable[bool]] | None = None

    async def run(self, task: ActionTask, how: str = "claimed") -> TaskRef | None:
        """Run one attempt of ``task`` and record what happened; the workflow task that the
        outcome made due, for the caller to run or announce (None: none). ``how``: "eager"
        when the commit that created it leased it here, else "claimed" (for metrics)."""
        try:
            defn = self.actions.get(task.name)
            if defn is None:
                raise UnknownActionError(f"this worker has no action {task.name!r}", name=task.name)
            defn = with_options(defn, task.options, self.clock)
            if defn.retry.attempts is not None and task.attempt > defn.retry.attempts:
                raise ActionLostError(
                    f"action {task.name!r}: the worker running attempt {task.attempt - 1} stopped "
                    "before it finished (its lease expired), and no attempts are left")
            result, handoff = await self._call_with_heartbeat(defn, task, how)
        except _NoLongerWanted:
            logger.info("action %s (%s) stopped: its result is no longer wanted", task.name,
                        task.idempotency_key)
            return None
        except Exception as exc:
            return await self._failed(task, exc)
        if handoff is not None:  # complete_later(): the token's holder records it
            return None
        if not defn.transaction:
            return await self._record(task, ActionCompleted(0, 0.0, task.cmd, result,
                                                            task.attempt))
        # the store recorded it, in the action's own transaction
        return workflow_ref(task.tenant, task.workflow_id) if result else None

    async def run_inline(self, tasks: list[ActionTask], budget: float,
                         interrupted: Callable[[], Awaitable[bool]]
                         ) -> list[ActionCompleted | ActionFailed | ActionTask]:
        """First attempts inside a workflow task, which records their outcomes with its commit.

        Each outcome is recorded, or it is the task to schedule instead: the next attempt after
        a retryable failure, or this attempt again, as a task of its own, if it could not finish
        within ``budget`` or was interrupted. While attempts run longer than ``INLINE_SLICE``
        the workflow task asks ``interrupted()`` every slice whether requests or inputs wait
        for it (a query, an update, a cancellation): then the ``async def`` attempts still
        running are cancelled and queued, so that requests are never held up behind them.
        """
        loop = asyncio.get_running_loop()
        began = loop.time()
        defns = [with_options(self.actions[t.name], t.options, self.clock) for t in tasks]
        calls = [self._start(d, t, _NEVER) for d, t in zip(defns, tasks)]
        # Each attempt's limit: its own timeout (it fails) or the budget (it is queued).
        limits = [(d.timeout, True) if d.timeout is not None and d.timeout <= budget
                  else (budget, False) for d in defns]
        stopped: dict[asyncio.Future[Any], bool] = {}  # told to stop: whether it timed out
        pending = set(calls)
        while pending:
            left = min(began + limit - loop.time()
                       for (limit, _), call in zip(limits, calls) if call in pending)
            if left > 0:
                _, pending = await asyncio.wait(pending, timeout=min(left, INLINE_SLICE))
            stop = bool(pending) and loop.time() - began >= INLINE_SLICE \
                and await _asked_to_stop(interrupted)
            for (limit, own), call, defn in zip(limits, calls, defns):
                if call in pending and (loop.time() - began >= limit or (stop and defn.is_async)):
                    stopped[call] = own and not stop
                    call.cancel()
                    pending.discard(call)
            if stop:
                break
        # Plain functions cannot be stopped (they finish within their timeouts); cancelled
        # attempts are let finish their cleanup.
        if pending or stopped:
            await asyncio.wait([*pending, *stopped])
        return [self._inline_outcome(d, t, c, stopped.get(c))
                for d, t, c in zip(defns, tasks, calls)]

    def _inline_outcome(self, defn: ActionDefinition, task: ActionTask, call: asyncio.Future[Any],
                        stopped: bool | None) -> ActionCompleted | ActionFailed | ActionTask:
        """What an inline attempt leads to; ``stopped``: None if it ran to its end, else
        whether it was stopped because it timed out (else it goes to the queue)."""
        exc: BaseException | None
        if stopped is False:  # too slow to run inline, or interrupted: a task of its own
            return replace(task, visible_at=self.clock())
        if stopped:
            exc = self._timed_out(defn)
        else:
            exc = call.exception()
            if exc is None:
                try:
                    return ActionCompleted(0, 0.0, task.cmd, defn.result.dump(call.result()),
                                           task.attempt)
                except Exception as dump_error:  # noqa: BLE001 - an unencodable result fails it
                    exc = dump_error
        if not isinstance(exc, Exception):
            raise exc
        if not defn.retry.retries(exc, task.attempt):
            return ActionFailed(0, 0.0, task.cmd, error_info(exc), task.attempt)
        delay = defn.retry.delay(task.attempt)
        _log_retry(task, exc, delay)
        return replace(task, attempt=task.attempt + 1, visible_at=self.clock() + delay,
                       last_error=describe_error(exc))

    async def _record(self, task: ActionTask, event: ActionCompleted | ActionFailed,
                      ) -> TaskRef | None:
        if self.settle is not None and await self.settle(task, event):
            return None  # its workflow task ran here, and committed it
        try:
            recorded = await self.store.complete_action_task(task, event, now=self.clock())
        except Exception:
            logger.exception("could not record the outcome of %s; it runs again after its lease",
                             task.name)
            return None
        return workflow_ref(task.tenant, task.workflow_id) if recorded else None

    async def _call_with_heartbeat(self, defn: ActionDefinition, task: ActionTask, how: str,
                                   ) -> tuple[Any, Handoff | None]:
        """The attempt's result, and its hand-off if it called ``complete_later()``."""
        cancellation = threading.Event()
        handoffs: list[Handoff] = []
        handing: list[asyncio.Future[None]] = []
        loop = asyncio.get_running_loop()

        def hand_off() -> str:  # from the action's task or thread: no await
            deadline = None if defn.timeout is None else started + defn.timeout
            retry_in = defn.retry.delay(task.attempt) \
                if defn.retry.retries(RuntimeError(), task.attempt) else None
            handoff = Handoff.of(task, deadline, defn.heartbeat_timeout, retry_in)
            handoffs.append(handoff)  # the lease goes to the token at once, not at the return
            loop.call_soon_threadsafe(
                lambda: handing.append(asyncio.ensure_future(self._hand_off(task, handoff))))
            return handoff.token

        started = self.clock()
        beats = Beats(loop, None if defn.transaction else hand_off)
        details = await self._details(task) if task.attempt > 1 else None
        call = self._start(defn, task, cancellation, beats, details, how,
                           await self.telemetry.trace_of(task))
        # A thread cannot be interrupted: a plain function is told, and its end awaited.
        stop = call.cancel if defn.is_async else None
        # The lease needs extending once a third of it has passed, and details recording once
        # they arrive; most attempts end before either and never start the task that does it.
        keeper: list[asyncio.Task[None]] = []

        def keep(at_once: bool) -> None:
            if not keeper:
                keeper.append(asyncio.create_task(
                    self._heartbeat(task, cancellation, stop, beats, at_once)))

        timer = loop.call_later(self.lease / 3, keep, True)
        beats.on_arrival = lambda: keep(False)
        try:
            result = await self._call(defn, call, beats, cancellation)
            if handoffs and not handing:  # asked for from a thread: scheduled by now
                await asyncio.sleep(0)
            if handing:
                await asyncio.gather(*handing)
            return result, (handoffs[0] if handoffs else None)
        except Exception as exc:
            if cancellation.is_set() and not isinstance(exc, _MissedHeartbeat):
                raise _NoLongerWanted() from None  # it failed because it was told to stop
            raise
        except asyncio.CancelledError:
            if cancellation.is_set() and not cancelling():
                raise _NoLongerWanted() from None
            raise
        finally:
            timer.cancel()
            beats.on_arrival = None
            if keeper:
                keeper[0].cancel()

    async def _hand_off(self, task: ActionTask, handoff: Handoff) -> None:
        """Lease the task to the token's holder, until the action's timeouts run out."""
        try:
            if await self.store.hand_off_action(task, self.owner, handoff.holder,
                                                until=handoff.lease_until(self.clock())):
                return
            logger.warning("action %s (%s) handed its outcome off, but its lease was lost: "
                           "another attempt runs", task.name, task.idempotency_key)
        except Exception:
            logger.exception("could not hand action %s off; it runs again after its lease",
                             task.name)

    async def _details(self, task: ActionTask) -> Any:
        """What the last heartbeat of an earlier attempt reported."""
        try:
            details = await self.store.action_heartbeat_details(task)
        except Exception:  # the attempt starts without them rather than not at all
            logger.warning("could not read the heartbeat details of %s", task.name,
                           exc_info=True)
            return None
        return None if details is None else _decode(details)

    async def _heartbeat(self, task: ActionTask, cancellation: threading.Event,
                         stop: Callable[[], Any] | None, beats: Beats, at_once: bool) -> None:
        """Keep the lease alive (extended at once if ``at_once``, then every third of it),
        recording heartbeat details soon after they arrive; once the lease is gone (the call
        was cancelled, the workflow ended, another worker took the call over), tell the
        attempt to stop."""
        while True:
            if not at_once:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.lease / 3):
                        await beats.arrived.wait()
            at_once = False
            if beats.token is not None:  # handed off: the token's holder keeps it alive
                return
            details = beats.take()
            try:
                if details is None:
                    kept = await self.store.extend_action_lease(
                        task, self.owner, lease=self.lease, now=self.clock())
                else:
                    kept = await self.store.record_action_heartbeat(
                        task, self.owner, details, lease=self.lease, now=self.clock())
            except Exception:
                logger.warning("could not extend the lease of %s", task.name, exc_info=True)
                beats.details = beats.details or details  # try again with the next one
                continue
            if not kept and beats.token is not None:
                return  # handed off meanwhile
            if not kept:
                cancellation.set()
                if stop is not None:
                    stop()
                return
            await asyncio.sleep(_BEAT_GAP)

    async def _call(self, defn: ActionDefinition, call: asyncio.Future[Any], beats: Beats,
                    cancellation: threading.Event) -> Any:
        if defn.timeout is None and defn.heartbeat_timeout is None:  # most: nothing to watch
            value = await call
        else:
            scope = asyncio.timeout(defn.timeout)
            try:
                async with scope:
                    value = await call if defn.heartbeat_timeout is None \
                        else await _watched(defn, call, beats, cancellation)
            except TimeoutError:
                if scope.expired():
                    raise self._timed_out(defn) from None
                raise
        # handed off (complete_later): what it returned is ignored
        return value if defn.transaction or beats.token else defn.result.dump(value)

    def _start(self, defn: ActionDefinition, task: ActionTask, cancellation: threading.Event,
               beats: Beats | None = None, details: Any = None, how: str = "inline",
               trace: str | None = None) -> asyncio.Future[Any]:
        """Start one attempt in its own task and context, so that ``action_info()``, its log
        context and its span are its own: an ``async def`` action as a task, a plain function
        in a thread. An inline attempt's span is a child of its workflow task's."""
        loaded, kwargs = defn.params.load(task.args, task.kwargs)
        args = tuple(loaded)
        info = ActionInfo(task.idempotency_key, task.name, task.attempt, task.workflow_id,
                          task.run_id, task.tenant, cancellation, details, beats)
        context = contextvars.copy_context()
        context.run(_action_info.set, info)
        ended = self.telemetry.action_started(task, how, trace, context)
        call: asyncio.Future[Any]
        if defn.transaction:
            call = asyncio.create_task(self._transact(defn, task, context, args, kwargs),
                                       context=context)
        elif defn.is_async:
            call = asyncio.create_task(defn.fn(*args, **kwargs), context=context)
        else:
            call = asyncio.ensure_future(asyncio.to_thread(context.run, defn.fn, *args, **kwargs))
        if ended is not None:
            call.add_done_callback(ended)
        return call

    async def _transact(self, defn: ActionDefinition, task: ActionTask,
                        context: contextvars.Context, args: tuple[Any, ...],
                        kwargs: dict[str, Any]) -> bool:
        """A database action's attempt: the store runs it in the transaction that records its
        completion; whether it recorded it. A plain function runs on the store's thread."""
        check_transactional(defn, self.store)

        async def body(conn: Any) -> Any:
            return defn.result.dump(await defn.fn(conn, *args, **kwargs))

        def run(conn: Any) -> Any:
            return defn.result.dump(context.run(defn.fn, conn, *args, **kwargs))

        return await self.store.run_action_transaction(
            task, body if defn.is_async else run, isolation=defn.isolation, now=self.clock())

    @staticmethod
    def _timed_out(defn: ActionDefinition) -> TimeoutError:
        return TimeoutError(f"action {defn.name!r} timed out after {defn.timeout}s")

    async def _failed(self, task: ActionTask, exc: Exception) -> TaskRef | None:
        defn = self.actions.get(task.name)
        if defn is not None:
            defn = with_options(defn, task.options, self.clock)
        if defn is None or not defn.retry.retries(exc, task.attempt):
            return await self._record(task, ActionFailed(0, 0.0, task.cmd, error_info(exc),
                                                         task.attempt))
        delay = defn.retry.delay(task.attempt)
        _log_retry(task, exc, delay)
        now = self.clock()
        try:
            await self.store.retry_action_task(task, self.owner, visible_at=now + delay,
                                               error=describe_error(exc), now=now)
        except Exception:
            logger.exception("could not schedule the retry of %s; it runs again after its lease",
                             task.name)
        return None


def _log_retry(task: ActionTask, exc: Exception, delay: float) -> None:
    """The warning of an attempt that failed and is retried (queued or inline alike)."""
    logger.warning("action %s attempt %d failed (%s: %s); retrying in %.1fs",
                   task.name, task.attempt, type(exc).__name__, exc, delay)


async def _watched(defn: ActionDefinition, call: asyncio.Future[Any], beats: Beats,
                   cancellation: threading.Event) -> Any:
    """``await call``, unless the attempt reports no heartbeat for the action's
    ``heartbeat_timeout``: then it is told to stop (an ``async def`` one is cancelled, a
    thread is no longer waited for) and ``_MissedHeartbeat`` is raised."""
    limit = defn.heartbeat_timeout
    assert limit is not None
    while True:
        left = beats.at + limit - time.monotonic()
        if left <= 0:
            cancellation.set()
            call.cancel()
            raise _MissedHeartbeat(f"action {defn.name!r} reported no heartbeat for {limit:g}s "
                                   "(its heartbeat_timeout)")
        done, _ = await asyncio.wait((call,), timeout=left)
        if done:
            return call.result()


async def _asked_to_stop(interrupted: Callable[[], Awaitable[bool]]) -> bool:
    """``interrupted()``; False when it cannot tell (the store is unreachable just now)."""
    try:
        return await interrupted()
    except Exception:
        logger.warning("could not look for requests during an inline action", exc_info=True)
        return False
