"""Running one action attempt: call it, then record the outcome or schedule the retry."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from typing import Any, Callable

from msgspec.structs import replace

from ._action_info import ActionInfo, _action_info
from .._ports import ClientPort
from .._definitions import ActionDefinition, with_options
from .._history import ActionCompleted, ActionFailed
from .._payloads import describe_error, error_info
from .._stores import ActionTask, workflow_ref
from ..errors import ActionLostError, DatabaseActionError, UnknownActionError

__all__ = ["ActionTaskRunner", "check_transactional"]

_DRIVER_KINDS = {"asyncpg": True, "sqlite3": False}  # whether the action must be async def

logger = logging.getLogger("durable.worker")

_NEVER = threading.Event()  # the cancellation of an inline attempt: never set


def _cancelling() -> bool:
    """Whether the current task itself is being cancelled (not just what it awaited)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class _NoLongerWanted(Exception):
    """The attempt stopped because its call was cancelled: there is nothing to record."""


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
                 lease: float) -> None:
        self.store = client.store
        self.client = client
        self.clock = client.clock
        self.owner = owner
        self.actions = actions
        self.lease = lease

    async def run(self, task: ActionTask) -> None:
        """Run one attempt of ``task`` and record what happened."""
        try:
            defn = self.actions.get(task.name)
            if defn is None:
                raise UnknownActionError(f"this worker has no action {task.name!r}", name=task.name)
            defn = with_options(defn, task.options, self.clock)
            if defn.retry.attempts is not None and task.attempt > defn.retry.attempts:
                raise ActionLostError(
                    f"action {task.name!r}: the worker running attempt {task.attempt - 1} stopped "
                    "before it finished (its lease expired), and no attempts are left")
            result = await self._call_with_heartbeat(defn, task)
        except _NoLongerWanted:
            logger.info("action %s (%s) stopped: its result is no longer wanted", task.name,
                        task.idempotency_key)
            return
        except Exception as exc:
            await self._failed(task, exc)
            return
        if not defn.transaction:
            await self._record(task, ActionCompleted(0, 0.0, task.cmd, result, task.attempt))
        elif result:  # the store recorded it, in the action's own transaction
            await self.client.publish([workflow_ref(task.tenant, task.workflow_id)])

    async def run_inline(self, task: ActionTask, budget: float
                         ) -> ActionCompleted | ActionFailed | ActionTask:
        """One attempt inside a workflow task, which records its outcome with its commit.

        Returns the outcome, or the task to schedule instead: the next attempt after a
        retryable failure, or this attempt again if it could not finish within ``budget``.
        """
        defn = with_options(self.actions[task.name], task.options, self.clock)
        # One timer for both limits: the action's own timeout fails the attempt, the budget
        # (when it is the shorter) sends the attempt to the queue.
        own = defn.timeout is not None and defn.timeout <= budget
        scope = asyncio.timeout(defn.timeout if own else budget)
        try:
            async with scope:
                result = await self._invoke(defn, task)
        except Exception as exc:
            if scope.expired():
                if not own:  # too slow to run inline: run it as a task of its own
                    return replace(task, visible_at=self.clock())
                exc = self._timed_out(defn)
            if not defn.retry.retries(exc, task.attempt):
                return ActionFailed(0, 0.0, task.cmd, error_info(exc), task.attempt)
            now = self.clock()
            return replace(task, attempt=task.attempt + 1, visible_at=now + defn.retry.delay(task.attempt),
                           last_error=describe_error(exc))
        return ActionCompleted(0, 0.0, task.cmd, result, task.attempt)

    async def _record(self, task: ActionTask, event: ActionCompleted | ActionFailed) -> None:
        try:
            recorded = await self.store.complete_action_task(task, event, now=self.clock())
        except Exception:
            logger.exception("could not record the outcome of %s; it runs again after its lease",
                             task.name)
            return
        if recorded:
            await self.client.publish([workflow_ref(task.tenant, task.workflow_id)])

    async def _call_with_heartbeat(self, defn: ActionDefinition, task: ActionTask) -> Any:
        cancellation = threading.Event()
        call = self._start(defn, task, cancellation)
        # A thread cannot be interrupted: a plain function is told, and its end awaited.
        stop = call.cancel if defn.is_async else None
        heartbeat = asyncio.create_task(self._heartbeat(task, cancellation, stop))
        try:
            return await self._call(defn, call)
        except Exception:
            if cancellation.is_set():  # it failed because it was told to stop
                raise _NoLongerWanted() from None
            raise
        except asyncio.CancelledError:
            if cancellation.is_set() and not _cancelling():
                raise _NoLongerWanted() from None
            raise
        finally:
            heartbeat.cancel()

    async def _heartbeat(self, task: ActionTask, cancellation: threading.Event,
                         stop: Callable[[], Any] | None) -> None:
        """Keep the lease alive; once it is gone (the call was cancelled, the workflow ended,
        another worker took the call over), tell the attempt to stop."""
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                kept = await self.store.extend_action_lease(task, self.owner, lease=self.lease,
                                                            now=self.clock())
            except Exception:
                logger.warning("could not extend the lease of %s", task.name, exc_info=True)
                continue
            if not kept:
                cancellation.set()
                if stop is not None:
                    stop()
                return

    async def _call(self, defn: ActionDefinition, call: asyncio.Future[Any]) -> Any:
        scope = asyncio.timeout(defn.timeout)
        try:
            async with scope:
                value = await call
                return value if defn.transaction else defn.result.dump(value)
        except TimeoutError:
            if scope.expired():
                raise self._timed_out(defn) from None
            raise

    async def _invoke(self, defn: ActionDefinition, task: ActionTask) -> Any:
        """Run the action (an inline attempt: no heartbeat); the result, dumped for the history."""
        return defn.result.dump(await self._start(defn, task, _NEVER))

    def _start(self, defn: ActionDefinition, task: ActionTask,
               cancellation: threading.Event) -> asyncio.Future[Any]:
        """Start one attempt in its own task and context, so that ``action_info()`` is its own:
        an ``async def`` action as a task, a plain function in a thread."""
        args, kwargs = defn.params.load(task.args, task.kwargs)
        info = ActionInfo(task.idempotency_key, task.name, task.attempt, task.workflow_id,
                          task.run_id, task.tenant, cancellation)
        context = contextvars.copy_context()
        context.run(_action_info.set, info)
        if defn.transaction:
            return asyncio.create_task(self._transact(defn, task, context, args, kwargs),
                                       context=context)
        if defn.is_async:
            return asyncio.create_task(defn.fn(*args, **kwargs), context=context)
        return asyncio.ensure_future(asyncio.to_thread(context.run, defn.fn, *args, **kwargs))

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

    async def _failed(self, task: ActionTask, exc: Exception) -> None:
        defn = self.actions.get(task.name)
        if defn is not None:
            defn = with_options(defn, task.options, self.clock)
        if defn is None or not defn.retry.retries(exc, task.attempt):
            await self._record(task, ActionFailed(0, 0.0, task.cmd, error_info(exc), task.attempt))
            return
        delay = defn.retry.delay(task.attempt)
        logger.warning("action %s attempt %d failed (%s: %s); retrying in %.1fs",
                       task.name, task.attempt, type(exc).__name__, exc, delay)
        now = self.clock()
        try:
            await self.store.retry_action_task(task, self.owner, visible_at=now + delay,
                                               error=describe_error(exc), now=now)
        except Exception:
            logger.exception("could not schedule the retry of %s; it runs again after its lease",
                             task.name)
