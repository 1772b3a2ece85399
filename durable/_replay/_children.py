"""Child workflows inside the engine: ``ctx.start_child`` and what the parent learns of them.

``StartChild`` is a command like any other (matched on replay by kind and workflow name); the
worker turns it into a ``Start`` in the same commit, and the store answers with a
``ChildStarted`` or ``ChildStartFailed`` input. The child's end comes back as
``ChildCompleted`` / ``ChildFailed`` / ``ChildCancelled``, appended by the child's own final
commit. Pure and synchronous, like the rest of the engine.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Generator
from typing import Any, Final, Generic, TypeVar

from .._definitions import WorkflowDefinition
from .._history import (
    CancelChild, ChildCancelled, ChildCompleted, ChildFailed, ChildInitiated, ChildStarted,
    ChildStartFailed, Event, StartChild,
)
from .._payloads import dump_value, same_payload
from .._queues import check_queue
from .._validate import check_id, check_priority
from ..errors import (
    DurableError, ValidationError, WorkflowAlreadyStartedError, WorkflowCancelledError,
    WorkflowFailedError,
)
from ._info import WorkflowInfo
from ._matcher import UNMATCHED, Matcher

__all__ = ["CHILD_INPUTS", "ChildHandle", "Children", "PARENT_CLOSE_POLICIES"]

R = TypeVar("R")

PARENT_CLOSE_POLICIES: Final = ("cancel", "abandon")
CHILD_INPUTS: Final = frozenset({ChildStarted, ChildStartFailed, ChildCompleted, ChildFailed,
                                 ChildCancelled})


class _Child:
    """One child the run started: where it is, and the futures the workflow awaits."""

    __slots__ = ("cmd", "defn", "workflow_id", "run_id", "parent_close", "started", "result",
                 "confirmed", "ended", "cancel_asked")

    def __init__(self, cmd: int, defn: WorkflowDefinition, workflow_id: str, run_id: str,
                 parent_close: str, loop: asyncio.AbstractEventLoop) -> None:
        self.cmd = cmd
        self.defn = defn
        self.workflow_id = workflow_id
        self.run_id = run_id
        self.parent_close = parent_close
        self.started: asyncio.Future[ChildHandle[Any]] = loop.create_future()
        self.result: asyncio.Future[Any] = loop.create_future()
        self.confirmed = False  # ChildStarted arrived: it exists (and may have continued)
        self.ended = False  # it ended, or was never created
        self.cancel_asked = False

    def abandoned(self) -> bool:
        """Whether the workflow stopped waiting for a child that ends with it."""
        return (self.parent_close == "cancel" and not self.ended and not self.cancel_asked
                and (self.started.cancelled() or self.result.cancelled()))


class ChildHandle(Generic[R]):
    """A child workflow started with ``ctx.start_child`` (inside the parent workflow).

    ``await handle`` (or ``await handle.result()``) waits for the child's end and returns its
    result; a child that failed raises ``WorkflowFailedError``, a cancelled one
    ``WorkflowCancelledError``. ``handle.cancel()`` asks the child to cancel.
    """

    __slots__ = ("_child", "_children")

    def __init__(self, children: Children, child: _Child) -> None:
        self._children = children
        self._child = child

    @property
    def workflow_id(self) -> str:
        """The child execution's workflow id (in the parent's tenant)."""
        return self._child.workflow_id

    @property
    def run_id(self) -> str:
        """The id of the child's first run."""
        return self._child.run_id

    def result(self) -> asyncio.Future[R]:
        """The child's result, once it ends (a future of the workflow's own loop)."""
        return self._child.result

    def __await__(self) -> Generator[Any, None, R]:
        return self._child.result.__await__()

    def cancel(self, reason: str = "") -> asyncio.Future[None]:
        """Ask the child to cancel (``CancelledError`` at its current await), once.

        The request is issued at the call; the future it returns is already done, so
        ``await child.cancel()`` reads like ``await handle.cancel()`` on a client's handle."""
        self._children.cancel(self._child, reason)
        done: asyncio.Future[None] = self._children.loop.create_future()
        done.set_result(None)
        return done

    def __repr__(self) -> str:
        return f"<ChildHandle {self._child.defn.name} {self._child.workflow_id}>"


class Children:
    """The children a run started, by the number of the command that started each."""

    __slots__ = ("_matcher", "loop", "_info", "by_cmd")

    def __init__(self, matcher: Matcher, loop: asyncio.AbstractEventLoop,
                 info: WorkflowInfo) -> None:
        self._matcher = matcher
        self.loop = loop
        self._info = info
        self.by_cmd: dict[int, _Child] = {}

    def start(self, defn: WorkflowDefinition, args: tuple[Any, ...], workflow_id: str | None,
              parent_close: str, queue: str | None = None, priority: int | None = None,
              fairness_key: str | None = None) -> asyncio.Future[ChildHandle[Any]]:
        """Issue ``StartChild`` (on ``queue``, default the child workflow's own; with
        ``priority`` and ``fairness_key``, default the parent's); the future resolves once the
        child exists."""
        on = defn.queue if queue is None else check_queue(queue, "ctx.start_child(queue=)")
        flow = _flow(self._info, priority, fairness_key)
        if parent_close not in PARENT_CLOSE_POLICIES:
            raise ValidationError(f"parent_close is 'cancel' or 'abandon', not {parent_close!r}",
                                  function="ctx.start_child", parameter="parent_close")
        info, matcher = self._info, self._matcher
        if workflow_id is not None and (check_id(workflow_id, "a child workflow id",
                                                 error=ValidationError) == info.workflow_id):
            raise ValidationError(f"a child workflow's id is a non-empty str other than its "
                                  f"parent's, not {workflow_id!r}", function="ctx.start_child",
                                  parameter="id")
        cmd = matcher.count
        wanted = workflow_id or f"{info.workflow_id}/{info.run_id[:8]}/{cmd}"
        run_id = uuid.uuid5(uuid.NAMESPACE_URL, f"durable:{info.run_id}:child:{cmd}").hex
        if matcher.replaying:
            a: list[Any] = dump_value(list(args), defn.name)
            fields: tuple[Any, ...] = (cmd, defn.name, defn.version, wanted, run_id, a, {},
                                       parent_close, on, *flow)
            recorded: Any = matcher.match(StartChild, fields, refusable=True)
            if recorded is UNMATCHED:
                defn.params.dump(args, {})  # refused live: it raises again, as it did then
                check_id(wanted, "a child workflow id", error=ValidationError)
                matcher.unmatched(StartChild, fields)
            if recorded is not None:
                if recorded.workflow_id != wanted or not same_payload(recorded.args, a):
                    self._validate(defn, args)
                    self._changed(defn, recorded, StartChild(*fields))
                run_id, wanted, parent_close = (recorded.run_id, recorded.workflow_id,
                                                recorded.parent_close)
        else:
            a, k = defn.params.dump(args, {})
            check_id(wanted, "a child workflow id", error=ValidationError)  # a derived one too
            matcher.match(StartChild, (cmd, defn.name, defn.version, wanted, run_id, a, k,
                                       parent_close, on, *flow))
        child = _Child(cmd, defn, wanted, run_id, parent_close, self.loop)
        self.by_cmd[cmd] = child
        return child.started

    def _validate(self, defn: WorkflowDefinition, args: tuple[Any, ...]) -> None:
        """Arguments other than recorded, checked as live: a call the checks refuse issued no
        command when it ran live, so it takes none of the recorded ones now."""
        try:
            defn.params.dump(args, {})
        except DurableError:
            self._matcher.put_back()
            raise

    def _changed(self, defn: WorkflowDefinition, recorded: ChildInitiated,
                 command: StartChild) -> None:
        """Another id or other arguments than recorded: an error if a later recorded start is
        the new one (reordered starts), else a warning (the recorded child is kept)."""
        def same(event: Event) -> bool:
            return (type(event) is ChildInitiated and event.workflow == defn.name
                    and event.workflow_id == command.workflow_id and event.args == command.args)

        self._matcher.changed(
            recorded, command, f"the id or arguments of child workflow {defn.name!r}",
            f" ({recorded.workflow_id!r} {recorded.args} -> {command.workflow_id!r} "
            f"{command.args})", same)

    def apply(self, event: Event) -> None:
        """An input about a child: its start was confirmed or refused, or it ended."""
        child = self.by_cmd.get(event.cmd)  # type: ignore[union-attr]
        if child is None:
            return
        kind = type(event)
        if kind is ChildStarted:
            child.confirmed = True
            _resolve(child.started, ChildHandle(self, child))
        elif kind is ChildStartFailed:
            child.ended = True
            tenant = self._info.tenant
            _fail(child.started, WorkflowAlreadyStartedError(
                f"cannot start child workflow {child.defn.name!r}: an execution with workflow "
                f"id {child.workflow_id!r} exists already in tenant {tenant!r}; pass another "
                "id= to ctx.start_child (or none, for a fresh one)",
                workflow_id=child.workflow_id, tenant=tenant, reason="its id is taken"))
        else:
            child.ended = True
            self._ended(child, event)

    def _ended(self, child: _Child, event: Event) -> None:
        if type(event) is ChildCompleted:
            try:
                value = child.defn.result.load(event.result)
                _resolve(child.result, value)
            except DurableError as exc:
                _fail(child.result, exc)
        elif type(event) is ChildFailed:
            error = event.error
            _fail(child.result, WorkflowFailedError(
                f"child workflow {child.workflow_id!r} failed: {error.type}: {error.message}",
                workflow_id=child.workflow_id, error_type=error.type,
                error_message=error.message, traceback=error.traceback))
        else:
            _fail(child.result, WorkflowCancelledError(
                f"child workflow {child.workflow_id!r} was cancelled",
                workflow_id=child.workflow_id))

    def cancel(self, child: _Child, reason: str) -> None:
        """Issue ``CancelChild`` (once per child; nothing for a child that ended)."""
        if child.ended or child.cancel_asked:
            return
        child.cancel_asked = True
        run_id = None if child.confirmed else child.run_id
        self._matcher.match(CancelChild, (child.cmd, child.workflow_id, run_id, reason))

    def cancel_abandoned(self) -> None:
        """Cancel the children (policy "cancel") whose futures the workflow cancelled."""
        if not self.by_cmd or self._matcher.done or self._matcher.error is not None:
            return
        for child in list(self.by_cmd.values()):
            if child.abandoned():
                self.cancel(child, "the parent workflow stopped waiting for it")

    def to_cancel_at_close(self) -> list[tuple[str, str | None]]:
        """(workflow id, run id or None) of the children to cancel when this run ends.

        A child whose start is not confirmed yet was started by this very workflow task: it
        is targeted by its run id, so that a workflow id found taken is left alone.
        """
        return [(c.workflow_id, None if c.confirmed else c.run_id)
                for c in self.by_cmd.values()
                if c.parent_close == "cancel" and not c.ended]


def _flow(info: WorkflowInfo, priority: Any, fairness_key: Any) -> tuple[int, str | None]:
    """A child's priority and fairness key: those given (checked), else its parent's."""
    where = "ctx.start_child"
    return (info.priority if priority is None else check_priority(priority, f"{where}(priority=)"),
            info.fairness_key if fairness_key is None
            else check_id(fairness_key, f"{where}(fairness_key=)"))


def _resolve(fut: asyncio.Future[Any], value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


def _fail(fut: asyncio.Future[Any], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)
