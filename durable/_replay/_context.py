"""``Context``: everything a workflow may do that must be deterministic, in front of the engine.

Each call goes to the engine part that records it: actions (``_actions``), timers (the loop),
external events (``_events``), state, data and randomness (``_state``), children
(``_children``), queries and updates (``_handlers``), patches (``_matcher``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterator, MutableMapping
from datetime import datetime, timedelta, timezone
from typing import (
    Any, Awaitable, Callable, NoReturn, ParamSpec, Protocol, TypeVar, TypeVarTuple, Unpack,
    overload,
)

from .._definitions import (
    Duration, Retry, WorkflowDefinition, action_definition, seconds, workflow_definition,
)
from .._history import EventReceived
from ._actions import ActionCalls
from ._children import ChildHandle, Children
from ._conditions import Conditions
from ._events import Inbox
from ._external import ExternalHandle
from ._handlers import Handlers
from .._validate import check_duration, check_id, check_text
from ..errors import ArgumentTypeError, ValidationError
from ._info import ContinueAsNewRequest, WorkflowInfo
from ._matcher import Matcher
from ._state import RunState

__all__ = ["Context"]

R = TypeVar("R")
P = ParamSpec("P")
Ts = TypeVarTuple("Ts")
F = TypeVar("F", bound=Callable[..., Any])


_workflow_logger = logging.getLogger("durable.workflow")


class _ReplayAwareLogger(logging.LoggerAdapter[logging.Logger]):
    """A logger that says nothing while the workflow replays history."""

    def __init__(self, matcher: Matcher) -> None:
        super().__init__(_workflow_logger, {"workflow_id": matcher.info.workflow_id})
        self._matcher = matcher

    def isEnabledFor(self, level: int) -> bool:
        return not self._matcher.replaying and self.logger.isEnabledFor(level)


class _Data(MutableMapping[str, Any]):
    """``ctx.data``: a dict whose assignments and deletions are recorded in history.

    Mutating a stored value in place (``ctx.data["items"].append(x)``) is not recorded;
    assign the new value instead.
    """

    __slots__ = ("_state",)

    def __init__(self, state: RunState) -> None:
        self._state = state

    def __getitem__(self, key: str) -> Any:
        return self._state.data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._state.set_data(check_id(key, "a ctx.data key"), value)

    def __delitem__(self, key: str) -> None:
        if key not in self._state.data:
            raise KeyError(key)
        self._state.set_data(key, None, deleted=True)

    def __iter__(self) -> Iterator[str]:
        return iter(self._state.data)

    def __len__(self) -> int:
        return len(self._state.data)

    def __repr__(self) -> str:
        return f"ctx.data({self._state.data!r})"


class _Actions:
    """``ctx.actions.<name>(**params)``: call a registered action by its name."""

    __slots__ = ("_calls",)

    def __init__(self, calls: ActionCalls) -> None:
        self._calls = calls

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        calls = self._calls
        defn = action_definition(name, calls.definitions)

        def call(*args: Any, **kwargs: Any) -> Awaitable[Any]:
            return calls.run(defn, *args, **kwargs)

        return call


class _Run(Protocol):
    """The signature of ``Context.run``."""

    @overload
    def __call__(self, action: Callable[P, Coroutine[Any, Any, R]], /,
                 *args: P.args, **kwargs: P.kwargs) -> Awaitable[R]: ...

    @overload
    def __call__(self, action: Callable[P, R], /,
                 *args: P.args, **kwargs: P.kwargs) -> Awaitable[R]: ...

    @overload
    def __call__(self, action: str, /, *args: Any, **kwargs: Any) -> Awaitable[Any]: ...

    # With per-call options (keywords the action's ParamSpec cannot take); each overload
    # requires one, so that a call without options is checked against the action alone.
    # (mypy: P.kwargs could take them, so it deems these unreachable.)

    @overload
    def __call__(  # type: ignore[overload-cannot-match]
            self, action: Callable[..., Coroutine[Any, Any, R]], /, *args: Any, queue: str,
            retry: Retry | None = None, timeout: Duration | None = None,
            total_timeout: Duration | None = None,
            **kwargs: Any) -> Awaitable[R]: ...

    @overload
    def __call__(  # type: ignore[overload-cannot-match]
            self, action: Callable[..., Coroutine[Any, Any, R]], /, *args: Any, retry: Retry,
            timeout: Duration | None = None, total_timeout: Duration | None = None,
            **kwargs: Any) -> Awaitable[R]: ...

    @overload
    def __call__(  # type: ignore[overload-cannot-match]
            self, action: Callable[..., Coroutine[Any, Any, R]], /, *args: Any, timeout: Duration,
            total_timeout: Duration | None = None,
            **kwargs: Any) -> Awaitable[R]: ...

    @overload
    def __call__(  # type: ignore[overload-cannot-match]
            self, action: Callable[..., Coroutine[Any, Any, R]], /, *args: Any, total_timeout: Duration,
            **kwargs: Any) -> Awaitable[R]: ...

    @overload
    def __call__(  # type: ignore[overload-cannot-match]
            self, action: Callable[..., R], /, *args: Any, queue: str,
            retry: Retry | None = None, timeout: Duration | None = None,
            total_timeout: Duration | None = None,
            **kwargs: Any) -> Awaitable[R]: ...

    @overload
    def __call__(  # type: ignore[overload-cannot-match]
            self, action: Callable[..., R], /, *args: Any, retry: Retry,
            timeout: Duration | None = None, total_timeout: Duration | None = None,
            **kwargs: Any) -> Awaitable[R]: ...

    @overload
    def __call__(  # type: ignore[overload-cannot-match]
            self, action: Callable[..., R], /, *args: Any, timeout: Duration,
            total_timeout: Duration | None = None,
            **kwargs: Any) -> Awaitable[R]: ...

    @overload
    def __call__(  # type: ignore[overload-cannot-match]
            self, action: Callable[..., R], /, *args: Any, total_timeout: Duration,
            **kwargs: Any) -> Awaitable[R]: ...

    @overload
    def __call__(  # type: ignore[overload-cannot-match]
            self, action: Callable[..., Coroutine[Any, Any, R]], /, *args: Any, priority: int,
            **kwargs: Any) -> Awaitable[R]: ...

    @overload
    def __call__(  # type: ignore[overload-cannot-match]
            self, action: Callable[..., R], /, *args: Any, priority: int,
            **kwargs: Any) -> Awaitable[R]: ...

class Context:
    """What a workflow uses instead of I/O, clocks and randomness; passed as its first argument."""

    __slots__ = ("_info", "_defn", "_loop", "_matcher", "_calls", "_inbox", "_state",
                 "_children", "_handlers", "_conditions", "_actions", "_data", "_logger",
                 "run")

    run: _Run
    """``await ctx.run(action, *args, **kwargs)``: run an action durably and return its result
    (recorded once, replayed thereafter). ``action`` is a decorated function or the name an
    action is registered under; the arguments are validated against its signature.
    Options of this call (recorded with it, so that replay sees them): ``queue=`` another task
    queue than the action's own; ``retry=`` (a ``durable.Retry``), ``timeout=`` (per attempt)
    and ``total_timeout=`` (from the call to its outcome, all attempts included) override the
    action's declaration; ``priority=`` (an int, higher first) overrides the workflow's for
    this call's task."""

    def __init__(self, info: WorkflowInfo, defn: WorkflowDefinition, loop: Any,
                 matcher: Matcher, calls: ActionCalls, inbox: Inbox, state: RunState,
                 children: Children, handlers: Callable[[], Handlers],
                 conditions: Conditions) -> None:
        self._info = info
        self._defn = defn
        self._loop = loop
        self._matcher = matcher
        self._calls = calls
        self._inbox = inbox
        self._state = state
        self._children = children
        self._handlers = handlers  # made on first use: most workflows have none
        self._conditions = conditions
        self.run = calls.run  # the engine's own method: one frame less per step
        # made on first use, like the logger: most workflows use few of them
        self._actions: _Actions | None = None
        self._data: _Data | None = None
        self._logger: logging.LoggerAdapter[logging.Logger] | None = None

    @property
    def actions(self) -> Any:
        """``ctx.actions.<name>(**params)``: call a registered action by its name."""
        if self._actions is None:
            self._actions = _Actions(self._calls)
        return self._actions

    @property
    def data(self) -> MutableMapping[str, Any]:
        """A dict whose assignments and deletions are recorded in history (``ctx.data``)."""
        if self._data is None:
            self._data = _Data(self._state)
        return self._data

    @property
    def logger(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger (``durable.workflow``) that is silent while the workflow replays."""
        if self._logger is None:  # made on first use: most workflows never log
            self._logger = _ReplayAwareLogger(self._matcher)
        return self._logger

    async def wait_for(self, *names: str, timeout: float | timedelta | None = None,
                       type: Any = None) -> EventReceived | None:
        """Wait for an external event named one of ``names``; None when ``timeout`` passes.

        Events sent before the wait are kept in order and the first matching one is returned
        (``.payload``, ``.metadata``, ``.key``). With ``type`` (a dataclass, Struct, ...) its
        payload is converted to it; one that does not fit raises ``ValidationError`` here.
        """
        if not names or not all(map(str.__instancecheck__, names)):  # isinstance, in C
            raise ArgumentTypeError("ctx.wait_for() needs one or more event names (str)")
        return await self._inbox.wait_for(names, None if timeout is None else seconds(timeout),
                                          type)

    @overload
    def on_signal(self, name: str, fn: None = None) -> Callable[[F], F]: ...
    @overload
    def on_signal(self, name: str, fn: F) -> F: ...
    def on_signal(self, name: str, fn: F | None = None) -> F | Callable[[F], F]:
        """Handle every external event ``name`` with ``fn(payload)`` or
        ``fn(payload, metadata)`` (plain or ``async``: it runs as a task of the workflow, one
        per event in arrival order, and may await actions and timers).

        The payload is converted to the annotated type of ``fn``'s first parameter. Events
        that arrived before the handler was registered are handled at registration, in
        order; a ``ctx.wait_for`` of the same name takes an event first. An event whose
        payload does not fit is logged and kept for ``ctx.wait_for``. Use as
        ``ctx.on_signal("name", fn)`` or ``@ctx.on_signal("name")``.
        """
        check_id(name, "a signal name", error=ArgumentTypeError)
        if fn is None:
            def register(f: F) -> F:
                self._inbox.on_signal(name, f)
                return f
            return register
        self._inbox.on_signal(name, fn)
        return fn

    async def wait_condition(self, predicate: Callable[[], Any], *,
                             timeout: float | timedelta | None = None) -> bool:
        """Wait until ``predicate()`` is true; return True, or False once ``timeout`` passes.

        The predicate reads workflow state (variables, ``ctx.state``, ``ctx.data``, what
        handlers set) and is checked now, then each time the workflow has run as far as it can
        after an input (an action's result, an event, a timer, an update): like Temporal's
        ``workflow.wait_condition``. It must not change the workflow; if it raises, the wait
        raises that exception. ``timeout`` is a durable timer.
        """
        if not callable(predicate):
            raise ArgumentTypeError(f"ctx.wait_condition() takes a function of no arguments "
                                    f"that returns a bool, not {predicate!r}")
        return await self._conditions.wait(predicate,
                                           None if timeout is None else seconds(timeout))

    def all_handlers_finished(self) -> bool:
        """Whether every update handler that started has returned (use it before the workflow
        returns: ``await ctx.wait_condition(ctx.all_handlers_finished)``)."""
        return self._handlers().all_finished()

    def sleep(self, duration: float | timedelta) -> Awaitable[None]:
        """Sleep on a durable timer (survives restarts of every process): ``await`` it."""
        return asyncio.sleep(max(check_duration(duration, "a duration"), 0.0))  # = seconds()

    def start_child(self, workflow: Callable[[Context, Unpack[Ts]], Awaitable[R]] | str,
                    *args: Unpack[Ts], id: str | None = None, parent_close: str = "cancel",
                    queue: str | None = None, priority: int | None = None,
                    fairness_key: str | None = None) -> Awaitable[ChildHandle[R]]:
        """Start ``workflow`` as a child execution; await it for the child's handle.

        The child is created atomically with this workflow task's commit, in the same tenant,
        under workflow id ``id`` (default: one derived from this run), and may run on any
        worker that hosts it. The await raises ``WorkflowAlreadyStartedError`` if that id is
        taken. ``await handle`` gives the child's result (its failure as
        ``WorkflowFailedError``, its cancellation as ``WorkflowCancelledError``).

        ``parent_close``: ``"cancel"`` (default) asks the child to cancel when this run ends
        first, or when the workflow stops waiting for it (a cancelled await); ``"abandon"``
        lets it run on regardless. Arguments are validated against the child's signature here.
        ``queue``: the task queue the child runs on (default: its workflow's own).
        ``priority`` and ``fairness_key``: the child's (default: this workflow's; see
        ``client.start``).
        """
        return self._children.start(workflow_definition(workflow), tuple(args), id, parent_close,
                                    queue, priority, fairness_key)

    def external(self, workflow_id: str) -> ExternalHandle:
        """Another execution of this tenant, by its workflow id: ``await
        ctx.external(id).send(name, payload)`` sends it an event and ``await
        ctx.external(id).cancel()`` asks it to cancel, each recorded here and delivered
        exactly once, with this workflow task's commit (nothing reaches an execution that does
        not exist or has ended)."""
        target = check_id(workflow_id, "a workflow id")
        if target == self._info.workflow_id:
            raise ValidationError("ctx.external() names another execution, not this one (its "
                                  "own inputs are its own to make)", parameter="workflow_id")
        return ExternalHandle(self._matcher, self._loop, target)

    def continue_as_new(self, *args: Any) -> NoReturn:
        """End this run and start the next run of the same execution with ``args``.

        The arguments are validated against the workflow's signature here, like
        ``client.start``'s. The call raises a ``BaseException`` that unwinds the workflow
        (``finally`` blocks run; ``except Exception`` does not catch it), so call it from the
        workflow function itself, or from a task it awaits. The next run starts with a fresh
        history (bounded: an endless workflow keeps continuing), runs today's code of the
        workflow, and gets the events that were received but not taken by ``wait_for`` yet.
        The execution keeps its workflow id: handles and ``handle.result()`` follow it.
        """
        defn = self._defn
        a, k = defn.params.dump(args, {})
        raise ContinueAsNewRequest(a, k)

    def patched(self, patch_id: str) -> bool:
        """Whether this execution takes the new path of a code change named ``patch_id``.

        Write ``if ctx.patched("id"): new code else: old code``. The first time the call runs
        live it returns True and records a ``Patched`` marker; replaying a history recorded
        before the change (no marker there) returns False, so it replays the old code. The
        answer is fixed per run: every later call with the same id returns the same. Once no
        open execution depends on the old path (``durable patches`` lists those that do),
        delete the call and the old branch; markers of calls no longer made are skipped.
        """
        if not isinstance(patch_id, str) or not patch_id:
            raise ValidationError(f"ctx.patched() takes a non-empty str patch id, not "
                                  f"{patch_id!r}; name the change, e.g. ctx.patched(\"fee-v2\")",
                                  function="ctx.patched", parameter="patch_id")
        return self._matcher.patched(check_id(patch_id, "a patch id", error=ValidationError))

    def now(self) -> datetime:
        """The workflow's current time (aware, UTC): the same on every replay."""
        return datetime.fromtimestamp(self._loop._time, timezone.utc)

    def random(self) -> float:
        """A random float in [0, 1) that replays identically."""
        return self._state.random.random()

    def uuid4(self) -> Any:
        """A random UUID that replays identically."""
        return self._state.uuid4()

    def set_state(self, state: str) -> None:
        """Record the workflow's named state (shown by ``describe()`` and ``durable show``)."""
        self._state.set_state(check_text(state, "a workflow state"))

    @property
    def state(self) -> str | None:
        """The last state set with :meth:`set_state` (None before the first)."""
        return self._state.state

    @overload
    def on_query(self, name: str, fn: None = None) -> Callable[[F], F]: ...
    @overload
    def on_query(self, name: str, fn: F) -> F: ...
    def on_query(self, name: str, fn: F | None = None) -> F | Callable[[F], F]:
        """Answer ``handle.query(name, *args)`` with ``fn(*args)``, a plain function.

        A query reads the workflow's state and adds nothing to its history: ``fn`` must not
        change the workflow (no actions, timers, ``set_state`` or ``data`` assignments: those
        raise ``IllegalWorkflowOperationError``). Use as ``ctx.on_query("name", fn)`` or as a
        decorator, ``@ctx.on_query("name")``. Registering a name again replaces its handler.
        """
        if fn is None:
            def register(f: F) -> F:
                self._handlers().on_query(name, f)
                return f
            return register
        self._handlers().on_query(name, fn)
        return fn

    @overload
    def on_update(self, name: str, fn: None = None,
                  validator: Callable[..., Any] | None = None) -> Callable[[F], F]: ...
    @overload
    def on_update(self, name: str, fn: F,
                  validator: Callable[..., Any] | None = None) -> F: ...
    def on_update(self, name: str, fn: F | None = None,
                  validator: Callable[..., Any] | None = None) -> F | Callable[[F], F]:
        """Handle ``handle.update(name, *args)``: ``validator(*args)``, then ``fn(*args)``.

        The validator (optional, a plain function) runs against the live workflow before
        anything is recorded and raises to reject the update: the caller gets
        ``UpdateRejectedError`` and the history is unchanged. An accepted update is recorded
        (``UpdateAccepted``) and ``fn`` (plain or ``async``: it may await actions and timers)
        runs in the workflow; what it returns, or raises, is recorded (``UpdateCompleted``) and
        returned to the caller. Also usable as ``@ctx.on_update("name", validator=check)``.
        """
        if fn is None:
            def register(f: F) -> F:
                self._handlers().on_update(name, f, validator)
                return f
            return register
        self._handlers().on_update(name, fn, validator)
        return fn

    @property
    def info(self) -> WorkflowInfo:
        """The workflow id, run id, tenant, workflow name, version and attempt."""
        return self._info

    @property
    def is_replaying(self) -> bool:
        """Whether the code is re-running against recorded history right now."""
        return self._matcher.replaying
