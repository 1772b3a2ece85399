"""Query and update handlers of one workflow instance, and the updates it is running.

A query handler is a plain function that reads the workflow's state and returns a value; an
update validator is a plain function that raises to refuse an update. Both run read-only
(:meth:`Handlers.read_only`): issuing a command or scheduling a callback from them raises, and
the random stream is put back as it was, so answering a query never changes what a replay
computes.

An update handler (plain or ``async``) runs in the workflow, as a task on its deterministic
loop, once its ``UpdateAccepted`` input is applied; when it returns or raises it issues
``CompleteUpdate``. On replay the same input starts the same handler, so it re-runs
deterministically and its commands are matched like any others.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import TYPE_CHECKING, Any, Callable

from .._history import CompleteUpdate, UpdateAccepted
from .._definitions import Declared, check_handler
from .._payloads import Params, check_size, dump_value, error_info
from ..errors import (
    IllegalWorkflowOperationError, UnknownQueryError, UnknownUpdateError,
    WorkflowClosedError,
)
from ._info import WorkflowInfo
from ._matcher import Matcher
from ._state import RunState

if TYPE_CHECKING:
    from ._loop import WorkflowLoop

__all__ = ["Handlers"]


class _ReadOnly(list[Any]):
    """Stands in for the command list and the ready queue while read-only code runs."""

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what

    def append(self, item: Any) -> None:
        kind = type(item).__name__
        raise IllegalWorkflowOperationError(
            f"{self.what} tried to change the workflow (a {kind}); query handlers and update "
            "validators only read its state: make changes in an update handler",
            operation=kind)


class _Handler:
    """A registered handler; its parameters are read from the signature on first use. One
    declared on the workflow's definition (``durable.on_query``) takes the context first:
    ``first`` is it, passed before the request's arguments."""

    __slots__ = ("fn", "validator", "where", "first", "_params")

    def __init__(self, fn: Callable[..., Any], validator: Callable[..., Any] | None,
                 where: str, first: tuple[Any, ...] = ()) -> None:
        self.fn = fn
        self.validator = validator
        self.where = where
        self.first = first
        self._params: Params | None = None

    def load(self, args: list[Any]) -> list[Any]:
        """Validate payload ``args`` against the handler's signature and convert them; the
        values to call it (and its validator) with."""
        if self._params is None:
            self._params = Params(self.fn, self.where, skip_first=bool(self.first))
        self._params.dump(tuple(args), {})
        return [*self.first, *self._params.load(args, {})[0]]


class Handlers:
    """What ``ctx.on_query`` / ``ctx.on_update`` registered, and the updates in flight."""

    __slots__ = ("_matcher", "_loop", "_state", "_info", "queries", "updates", "running",
                 "seen")

    def __init__(self, matcher: Matcher, loop: WorkflowLoop, state: RunState,
                 info: WorkflowInfo) -> None:
        self._matcher = matcher
        self._loop = loop
        self._state = state
        self._info = info
        self.queries: dict[str, _Handler] = {}
        self.updates: dict[str, _Handler] = {}
        self.running: dict[str, str] = {}  # accepted update id -> name, not completed yet
        self.seen: set[str] = set()  # every update id accepted in this run

    # ---- registration (workflow code) --------------------------------------------------------

    def on_query(self, name: str, fn: Callable[..., Any]) -> None:
        """Register (or replace) query handler ``name``."""
        check_handler("query", name, fn)
        self.queries[name] = _Handler(fn, None, f"query {name!r}")

    def on_update(self, name: str, fn: Callable[..., Any],
                  validator: Callable[..., Any] | None) -> None:
        """Register (or replace) update handler ``name`` and its validator."""
        check_handler("update", name, fn, validator)
        self.updates[name] = _Handler(fn, validator, f"update {name!r}")

    def declare(self, declared: Declared, ctx: Any) -> None:
        """The handlers declared on the workflow's definition, which take ``ctx`` first."""
        for (kind, name), (fn, validator) in declared.items():
            handlers = self.queries if kind == "query" else self.updates
            handlers[name] = _Handler(fn, validator, f"{kind} {name!r}", (ctx,))

    def knows(self, kind: str, name: str) -> bool:
        """Whether a handler for request ``name`` of ``kind`` is registered (yet)."""
        return name in (self.queries if kind == "query" else self.updates)

    # ---- answering (the worker, between activations) ----------------------------------------

    def query(self, name: str, args: list[Any]) -> Any:
        """Run query handler ``name`` read-only; return its value as a payload (or raise)."""
        handler = self.queries.get(name)
        if handler is None:
            info = self._info
            raise UnknownQueryError(
                f"workflow {info.workflow!r} (id {info.workflow_id!r}) has no query handler "
                f"{name!r} (it has {sorted(self.queries)}); register one with ctx.on_query",
                name=name, known=sorted(self.queries), workflow_id=info.workflow_id)
        values = handler.load(args)
        value = self.read_only(handler.where, handler.fn, *values)
        payload = dump_value(value, f"result of {handler.where}")
        check_size(payload, f"result of {handler.where}")
        return payload

    def validate(self, name: str, args: list[Any]) -> None:
        """Raise if update ``name`` with ``args`` must be rejected (nothing is recorded then)."""
        info = self._info
        if self._matcher.done:
            raise WorkflowClosedError(f"execution {info.workflow_id!r} has ended; update "
                                      f"{name!r} was not applied", workflow_id=info.workflow_id)
        handler = self.updates.get(name)
        if handler is None:
            raise UnknownUpdateError(
                f"workflow {info.workflow!r} (id {info.workflow_id!r}) has no update handler "
                f"{name!r} (it has {sorted(self.updates)}); register one with ctx.on_update",
                name=name, known=sorted(self.updates), workflow_id=info.workflow_id)
        values = handler.load(args)
        if handler.validator is not None:
            self.read_only(f"the validator of {handler.where}", handler.validator, *values)

    # ---- running accepted updates (inside activations) --------------------------------------

    def all_finished(self) -> bool:
        """Whether no accepted update's handler is still running."""
        return not self.running

    def start(self, event: UpdateAccepted) -> bool:
        """Start the handler of an accepted update; False if it has none (a divergence)."""
        handler = self.updates.get(event.name)
        if handler is None:
            return False
        self.seen.add(event.id)
        self.running[event.id] = event.name
        self._loop.create_task(self._run(event, handler), name=f"update {event.name} {event.id}")
        return True

    async def _run(self, event: UpdateAccepted, handler: _Handler) -> None:
        result, error = None, None
        try:
            value = handler.fn(*handler.load(event.args))
            if inspect.isawaitable(value):
                value = await value
            result = dump_value(value, f"result of {handler.where}")
            check_size(result, f"result of {handler.where}")
        except (Exception, asyncio.CancelledError) as exc:
            error = error_info(exc)
        self.running.pop(event.id, None)
        code = getattr(handler.fn, "__code__", None)
        where = (f"{code.co_filename}:{code.co_firstlineno} ({handler.where} returned)"
                 if code is not None else handler.where)
        self._matcher.match(CompleteUpdate, (event.id, event.name, result, error), where)

    def read_only(self, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` as workflow code that must not change the workflow.

        Commands, callbacks and timers raise ``IllegalWorkflowOperationError``; the random
        stream is put back as it was, so a query never changes what a replay computes.
        """
        loop, state = self._loop, self._state
        ready, rng = loop._ready, state.save_random()
        loop._ready = _ReadOnly(what)  # type: ignore[assignment]
        try:
            with self._matcher.read_only(_ReadOnly(what)):
                return loop.run_sync(fn, *args)
        finally:
            loop._ready = ready
            state.restore_random(rng)
