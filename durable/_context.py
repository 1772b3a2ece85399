"""``Context``: everything a workflow may do that must be deterministic; ``action_info()``."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator, MutableMapping
from contextvars import ContextVar
from datetime import datetime, timedelta, timezone
from typing import (
    TYPE_CHECKING, Any, Awaitable, Callable, NamedTuple, NoReturn, ParamSpec, TypeVar,
    TypeVarTuple, Unpack,
)

from ._definitions import action_definition, seconds
from ._history import EventReceived
from ._validate import check_id, check_text
from .errors import ArgumentTypeError, DurableError, ValidationError

if TYPE_CHECKING:
    from ._replay._children import ChildHandle
    from ._replay._instance import WorkflowInfo, WorkflowInstance

__all__ = ["ActionInfo", "Context", "action_info"]

P = ParamSpec("P")
R = TypeVar("R")
Ts = TypeVarTuple("Ts")
F = TypeVar("F", bound=Callable[..., Any])


_NEVER_CANCELLED: threading.Event = threading.Event()


class ActionInfo(NamedTuple):
    """Facts about the running action attempt (``durable.action_info()``).

    ``idempotency_key`` is the same on every attempt of one call, and differs between calls:
    pass it to the services the action calls so a retried attempt does not repeat an effect.

    ``cancellation`` is set once the call's result is no longer wanted: the workflow cancelled
    it (it was cancelled itself, an ``asyncio.timeout`` expired, ...), the workflow ended, or
    another worker took the call over. The worker learns it at the attempt's next heartbeat
    (every third of its lease). An ``async def`` action is then cancelled at its current
    ``await``; a plain function keeps running and should check :attr:`cancelled` (or wait on
    ``cancellation``) and stop early. Whatever it returns is still recorded, and ignored.
    """

    idempotency_key: str
    action: str
    attempt: int
    workflow_id: str
    run_id: str
    tenant: str
    cancellation: threading.Event = _NEVER_CANCELLED

    @property
    def cancelled(self) -> bool:
        """Whether the call's result is no longer wanted (see :attr:`cancellation`)."""
        return self.cancellation.is_set()


_action_info: ContextVar[ActionInfo] = ContextVar("durable_action_info")


def action_info() -> ActionInfo:
    """Information about the action attempt running in this task or thread."""
    try:
        return _action_info.get()
    except LookupError:
        raise DurableError("durable.action_info() is only available inside a running action") from None


class _ReplayAwareLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger that says nothing while the workflow replays history."""

    def __init__(self, instance: WorkflowInstance) -> None:
        super().__init__(logging.getLogger("durable.workflow"),
                         {"workflow_id": instance.info.workflow_id})
        self._instance = instance

    def isEnabledFor(self, level: int) -> bool:
        return not self._instance.replaying and self.logger.isEnabledFor(level)


class _Data(MutableMapping[str, Any]):
    """``ctx.data``: a dict whose assignments and deletions are recorded in history.

    Mutating a stored value in place (``ctx.data["items"].append(x)``) is not recorded;
    assign the new value instead.
    """

    __slots__ = ("_instance",)

    def __init__(self, instance: WorkflowInstance) -> None:
        self._instance = instance

    def __getitem__(self, key: str) -> Any:
        return self._instance.data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._instance.set_data(check_id(key, "a ctx.data key"), value)

    def __delitem__(self, key: str) -> None:
        if key not in self._instance.data:
            raise KeyError(key)
        self._instance.set_data(key, None, deleted=True)

    def __iter__(self) -> Iterator[str]:
        return iter(self._instance.data)

    def __len__(self) -> int:
        return len(self._instance.data)

    def __repr__(self) -> str:
        return f"ctx.data({self._instance.data!r})"


class _Actions:
    """``ctx.actions.<name>(**params)``: call a registered action by its name."""

    __slots__ = ("_instance",)

    def __init__(self, instance: WorkflowInstance) -> None:
        self._instance = instance

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        instance = self._instance
        defn = action_definition(name, instance.actions)

        def call(*args: Any, **kwargs: Any) -> Awaitable[Any]:
            return instance.schedule_action(defn, args, kwargs)

        return call


class Context:
    """What a workflow uses instead of I/O, clocks and randomness; passed as its first argument."""

    __slots__ = ("_instance", "actions", "data", "logger")

    def __init__(self, instance: WorkflowInstance) -> None:
        self._instance = instance
        self.actions = _Actions(instance)
        self.data: MutableMapping[str, Any] = _Data(instance)
        self.logger: logging.LoggerAdapter = _ReplayAwareLogger(instance)  # type: ignore[type-arg]

    def run(self, action: Callable[P, Awaitable[R]] | Callable[P, R], /,
            *args: P.args, **kwargs: P.kwargs) -> Awaitable[R]:
        """Run an action durably and return its result (recorded once, replayed thereafter)."""
        instance = self._instance
        defn = getattr(action, "__durable_action__", None)  # the common case, without a call
        if defn is None:
            defn = action_definition(action, instance.actions)
        return instance.schedule_action(defn, args, kwargs)

    async def wait_for(self, *names: str, timeout: float | timedelta | None = None) -> EventReceived | None:
        """Wait for an external event named one of ``names``; None when ``timeout`` passes.

        Events sent before the wait are kept in order and the first matching one is returned.
        """
        if not names or not all(isinstance(n, str) for n in names):
            raise ArgumentTypeError("ctx.wait_for() needs one or more event names (str)")
        return await self._instance.wait_for(names, None if timeout is None else seconds(timeout))

    def sleep(self, duration: float | timedelta) -> Awaitable[None]:
        """Sleep on a durable timer (survives restarts of every process): ``await`` it."""
        return asyncio.sleep(max(seconds(duration), 0.0))

    def start_child(self, workflow: Callable[[Context, Unpack[Ts]], Awaitable[R]] | str,
                    *args: Unpack[Ts], id: str | None = None,
                    parent_close: str = "cancel") -> Awaitable[ChildHandle[R]]:
        """Start ``workflow`` as a child execution; await it for the child's handle.

        The child is created atomically with this workflow task's commit, in the same tenant,
        under workflow id ``id`` (default: one derived from this run), and may run on any
        worker that hosts it. The await raises ``WorkflowAlreadyStartedError`` if that id is
        taken. ``await handle`` gives the child's result (its failure as
        ``WorkflowFailedError``, its cancellation as ``WorkflowCancelledError``).

        ``parent_close``: ``"cancel"`` (default) asks the child to cancel when this run ends
        first, or when the workflow stops waiting for it (a cancelled await); ``"abandon"``
        lets it run on regardless. Arguments are validated against the child's signature here.
        """
        from ._definitions import workflow_definition
        from ._replay._children import PARENT_CLOSE_POLICIES

        defn = workflow_definition(workflow)
        if parent_close not in PARENT_CLOSE_POLICIES:
            raise ValidationError(f"parent_close is 'cancel' or 'abandon', not {parent_close!r}",
                                  function="ctx.start_child", parameter="parent_close")
        if id is not None and (check_id(id, "a child workflow id", error=ValidationError)
                               == self._instance.info.workflow_id):
            raise ValidationError(f"a child workflow's id is a non-empty str other than its "
                                  f"parent's, not {id!r}", function="ctx.start_child",
                                  parameter="id")
        return self._instance.children.start(defn, tuple(args), id, parent_close)

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
        from ._payloads import check_size
        from ._replay._instance import ContinueAsNewRequest

        defn = self._instance.defn
        a, k = defn.params.dump(args, {})
        check_size([a, k], f"arguments of {defn.name}")
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
        return self._instance.patched(check_id(patch_id, "a patch id", error=ValidationError))

    def now(self) -> datetime:
        """The workflow's current time (aware, UTC): the same on every replay."""
        return datetime.fromtimestamp(self._instance._loop._time, timezone.utc)

    def random(self) -> float:
        """A random float in [0, 1) that replays identically."""
        return self._instance.random.random()

    def uuid4(self) -> Any:
        """A random UUID that replays identically."""
        return self._instance.uuid4()

    def set_state(self, state: str) -> None:
        """Record the workflow's named state (shown by ``describe()`` and ``durable show``)."""
        self._instance.set_state(check_text(state, "a workflow state"))

    @property
    def state(self) -> str | None:
        """The last state set with :meth:`set_state` (None before the first)."""
        return self._instance.state

    def on_query(self, name: str, fn: F | None = None) -> Any:
        """Answer ``handle.query(name, *args)`` with ``fn(*args)``, a plain function.

        A query reads the workflow's state and adds nothing to its history: ``fn`` must not
        change the workflow (no actions, timers, ``set_state`` or ``data`` assignments: those
        raise ``IllegalWorkflowOperationError``). Use as ``ctx.on_query("name", fn)`` or as a
        decorator, ``@ctx.on_query("name")``. Registering a name again replaces its handler.
        """
        if fn is None:
            def register(f: F) -> F:
                self._instance.handlers.on_query(name, f)
                return f
            return register
        self._instance.handlers.on_query(name, fn)
        return fn

    def on_update(self, name: str, fn: F | None = None,
                  validator: Callable[..., Any] | None = None) -> Any:
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
                self._instance.handlers.on_update(name, f, validator)
                return f
            return register
        self._instance.handlers.on_update(name, fn, validator)
        return fn

    @property
    def info(self) -> WorkflowInfo:
        """The workflow id, run id, tenant, workflow name, version and attempt."""
        return self._instance.info

    @property
    def is_replaying(self) -> bool:
        """Whether the code is re-running against recorded history right now."""
        return self._instance.replaying
