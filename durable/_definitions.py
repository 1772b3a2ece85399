"""Authoring: ``@workflow``, ``@action``, ``Retry`` and the registry of definitions."""

from __future__ import annotations

import functools
import inspect
import math
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from types import ModuleType
from typing import Any, Awaitable, Callable, Final, TypeVar, get_type_hints, overload

from ._guard import warn as warn_nondeterministic
from ._limits import Limit, check_limit
from ._options import CallOptions, RetrySpec
from ._payloads import Params, Result
from ._queues import DEFAULT_QUEUE, check_queue
from ._validate import (
    MAX_DURATION, check_count, check_duration, check_id, check_number, check_positive_duration,
    check_retention, show,
)
from .errors import (
    ArgumentTypeError, DatabaseActionError, InputError, InvalidArgumentError, UnknownActionError,
    UnknownWorkflowError, ValidationError,
)

__all__ = [
    "ActionDefinition",
    "Retry",
    "WorkflowDefinition",
    "action",
    "action_definition",
    "check_handler",
    "declared_result",
    "definitions_in",
    "on_query",
    "on_update",
    "retry_spec",
    "seconds",
    "workflow",
    "with_options",
    "workflow_definition",
]

F = TypeVar("F", bound=Callable[..., Any])

# Isolation levels a database action may ask for (asyncpg's names for PostgreSQL's levels).
ISOLATION_LEVELS: Final = ("read_committed", "repeatable_read", "serializable")
DEFAULT_ISOLATION: Final = "serializable"  # as DBOS transactions

Duration = float | int | timedelta


def seconds(duration: Duration, what: str = "a duration") -> float:
    """A duration (seconds or ``timedelta``) in seconds: finite, at most ``MAX_DURATION``
    (``ArgumentTypeError`` for another type, ``ValidationError`` for NaN, infinities or more)."""
    return check_duration(duration, what)


@dataclass(frozen=True, slots=True)
class Retry:
    """How an action is retried.

    ``attempts`` counts all attempts, the first included (``attempts=1`` never retries);
    ``attempts=None`` retries until the call's ``total_timeout`` runs out, or for ever. The
    n-th retry waits ``initial * backoff ** (n - 1)`` seconds, at most ``maximum``.
    Exceptions whose type is in ``non_retryable`` (or a ``durable.errors.NonRetryable``) fail
    the call at once.
    """

    attempts: int | None = 3
    initial: float = 1.0
    backoff: float = 2.0
    maximum: float = 60.0
    non_retryable: tuple[type[BaseException], ...] = ()

    def __post_init__(self) -> None:
        try:
            if self.attempts is not None:
                check_count(self.attempts, "Retry(attempts=)", minimum=1)
            check_number(self.initial, "Retry(initial=)", maximum=MAX_DURATION)
            check_number(self.backoff, "Retry(backoff=)", minimum=1.0)
            check_number(self.maximum, "Retry(maximum=)", maximum=MAX_DURATION)
        except InputError as exc:
            raise InvalidArgumentError(f"invalid retry policy: attempts >= 1 (or None: no "
                                       f"limit), initial >= 0, "
                                       f"backoff >= 1, maximum >= 0, all finite ({exc})"
                                       ) from None
        if not isinstance(self.non_retryable, tuple) or not all(
                isinstance(t, type) and issubclass(t, BaseException) for t in self.non_retryable):
            raise InvalidArgumentError(f"invalid retry policy: non_retryable is a tuple of "
                                       f"exception classes, not {show(self.non_retryable)}")

    def delay(self, attempt: int) -> float:
        """Seconds to wait after attempt number ``attempt`` (1-based) failed."""
        try:
            return min(self.initial * self.backoff ** (attempt - 1), self.maximum)
        except OverflowError:  # unlimited attempts: the backoff has long reached its maximum
            return self.maximum

    def retries(self, exc: BaseException, attempt: int) -> bool:
        """Whether attempt number ``attempt`` that raised ``exc`` is followed by another."""
        from .errors import DatabaseActionError, NonRetryable, ValidationError

        if isinstance(exc, (NonRetryable, ValidationError, DatabaseActionError)) \
                or isinstance(exc, self.non_retryable):
            return False
        return self.attempts is None or attempt < self.attempts


@dataclass(frozen=True, slots=True)
class _Bounded(Retry):
    """A call's retry policy with its ``total_timeout``: no retry starts after ``deadline``
    (on ``clock``)."""

    deadline: float = math.inf
    clock: Callable[[], float] = time.time

    def retries(self, exc: BaseException, attempt: int) -> bool:
        return Retry.retries(self, exc, attempt) \
            and self.clock() + self.delay(attempt) < self.deadline


def retry_spec(retry: Retry) -> RetrySpec:
    """A retry policy as a call records it."""
    return RetrySpec(retry.attempts, retry.initial, retry.backoff, retry.maximum,
                     [f"{t.__module__}.{t.__qualname__}" for t in retry.non_retryable])


def with_options(defn: ActionDefinition, options: CallOptions | None,
                 clock: Callable[[], float]) -> ActionDefinition:
    """The action as one call runs it: its declaration with the call's options (``retry``,
    ``timeout``, and ``total_timeout``, which bounds the retries and each attempt's time)."""
    if options is None:
        return defn
    retry = defn.retry if options.retry is None else _retry(options.retry)
    timeout = defn.timeout if options.timeout is None else options.timeout
    if options.deadline is not None:
        left = max(options.deadline - clock(), 0.001)
        timeout = left if timeout is None else min(timeout, left)
        retry = _Bounded(retry.attempts, retry.initial, retry.backoff, retry.maximum,
                         retry.non_retryable, options.deadline, clock)
    return replace(defn, retry=retry, timeout=timeout)


def _retry(spec: RetrySpec) -> Retry:
    """A recorded retry policy; exception classes that cannot be imported here are left out."""
    found: list[type[BaseException]] = []
    for name in spec.non_retryable:
        module, _, qualname = name.rpartition(".")
        value: Any = sys.modules.get(module)
        for part in qualname.split("."):
            value = getattr(value, part, None)
        if isinstance(value, type) and issubclass(value, BaseException):
            found.append(value)
    return Retry(spec.attempts, spec.initial, spec.backoff, spec.maximum, tuple(found))


# Handlers declared on a workflow's definition, by (kind, name): (handler, update validator).
Declared = dict[tuple[str, str], tuple[Callable[..., Any], Callable[..., Any] | None]]


@dataclass(frozen=True, slots=True, eq=False)
class WorkflowDefinition:
    """A registered workflow: its name, version and the coroutine function."""

    name: str
    version: str
    fn: Callable[..., Awaitable[Any]]
    params: Params
    result: Result
    queue: str = DEFAULT_QUEUE  # where its executions' workflow tasks go unless started elsewhere
    handlers: Declared = field(default_factory=lambda: Declared())  # durable.on_query / ...
    retention: float | None = None  # seconds its closed executions are kept (None: the store's)


def on_query(workflow: Any, name: str | None = None) -> Callable[[F], F]:
    """Declare a query handler on ``workflow``'s definition: ``@durable.on_query(my_workflow)``
    over ``def status(ctx: durable.Context, *args) -> value`` (a plain function; the name
    defaults to the function's). It exists from the moment each run starts, before any of the
    workflow's code ran; ``ctx.on_query`` with the same name replaces it for that run."""
    return _declare(workflow, "query", name, None)


def on_update(workflow: Any, name: str | None = None, *,
              validator: Callable[..., Any] | None = None) -> Callable[[F], F]:
    """Declare an update handler on ``workflow``'s definition, like :func:`on_query`: the
    handler (plain or ``async``) and its ``validator`` take the context first, then the
    update's arguments."""
    return _declare(workflow, "update", name, validator)


def check_handler(kind: str, name: Any, fn: Any, validator: Any = None) -> None:
    """Refuse a handler that cannot be one (``ArgumentTypeError``)."""
    if not isinstance(name, str) or not name:
        raise ArgumentTypeError(f"a {kind} handler needs a non-empty name (str), not "
                                f"{name!r}")
    if not callable(fn):
        raise ArgumentTypeError(f"the {kind} handler {name!r} is not callable: {fn!r}")
    if kind == "query" and inspect.iscoroutinefunction(fn):
        raise ArgumentTypeError(f"query handler {name!r} is async: a query handler is a plain "
                                "function that reads the workflow's state and returns a value")
    if validator is not None and (not callable(validator)
                                  or inspect.iscoroutinefunction(validator)):
        raise ArgumentTypeError(f"the validator of update {name!r} must be a plain function "
                                f"that raises to reject the update, not {validator!r}")


def declared_result(defn: WorkflowDefinition | None, kind: str, name: str,
                    result_type: Any) -> Any:
    """A request's ``result_type``: the one given, else the return annotation of the handler
    declared on the workflow's definition (None: returned as it is)."""
    if result_type is not None or defn is None or (kind, name) not in defn.handlers:
        return result_type
    fn = defn.handlers[kind, name][0]
    try:
        annotation = get_type_hints(fn).get("return")
    except Exception:  # an annotation that does not resolve: the answer as it is
        return None
    return None if annotation in (None, Any, type(None)) else annotation


def _declare(workflow: Any, kind: str, name: str | None,
             validator: Callable[..., Any] | None) -> Callable[[F], F]:
    defn = workflow_definition(workflow)

    def decorate(fn: F) -> F:
        handler_name = fn.__name__ if name is None else name
        check_handler(kind, handler_name, fn, validator)
        defn.handlers[kind, handler_name] = (fn, validator)
        return fn

    return decorate


@dataclass(frozen=True, slots=True, eq=False)
class ActionDefinition:
    """A registered action: its name, policy and the function that runs it."""

    name: str
    fn: Callable[..., Any]
    is_async: bool
    retry: Retry
    timeout: float | None
    params: Params
    result: Result
    inline: bool | None = None
    transaction: bool = False  # a database action: its first parameter is the connection
    isolation: str = DEFAULT_ISOLATION
    heartbeat_timeout: float | None = None  # an attempt silent this long has timed out
    queue: str = DEFAULT_QUEUE  # where its calls go unless a call says otherwise
    limit: Limit | None = None  # max_concurrent and rate (``_limits``), enforced by claims


# Every definition made in this process, by name: the fallback when a worker or client is not
# given an explicit list.
_workflows: Final[dict[str, WorkflowDefinition]] = {}
_actions: Final[dict[str, ActionDefinition]] = {}


@overload
def workflow(fn: F, /) -> F: ...
@overload
def workflow(*, name: str | None = None, version: str = "1", queue: str = DEFAULT_QUEUE,
             retention: float | timedelta | None = None) -> Callable[[F], F]: ...
def workflow(fn: Any = None, /, *, name: str | None = None, version: str = "1",
             queue: str = DEFAULT_QUEUE, retention: float | timedelta | None = None) -> Any:
    """Declare an ``async def`` workflow whose first parameter is the ``Context``.

    Use bare (``@durable.workflow``) or with a ``name`` (default: the function's name) and a
    ``version`` recorded in every history it starts. Calls in its code that would replay
    differently (``datetime.now()``, ``random.random()``, ``uuid.uuid4()``, ``os.environ``, ...)
    are reported as a ``durable.NondeterministicCallWarning`` with ``file:line`` and what to
    use instead (``ctx.now()``, ``ctx.random()``, ``ctx.uuid4()``, an action).

    ``queue`` (default ``"default"``) is the task queue its executions run on unless
    ``client.start(..., queue=...)`` names another: only workers that host the workflow on
    that queue run them.

    ``retention`` (seconds or a ``timedelta``) is how long its executions are kept once
    closed, with every row of theirs, before ``durable server`` or an embedded worker deletes
    them; by default its tenant's setting applies, else 30 days (see ``client.collect_garbage``).
    The workers that host it record it in the store when they start.
    """
    check_queue(queue)
    keep = check_retention(retention)

    def decorate(f: F) -> F:
        if not inspect.iscoroutinefunction(f):
            raise ArgumentTypeError(f"@durable.workflow needs an async def function, got {show(f)}")
        wf_name = check_id(f.__name__ if name is None else name, "a workflow name")
        check_id(str(version), "a workflow version")
        defn = WorkflowDefinition(wf_name, str(version), f, Params(f, wf_name, skip_first=True),
                                  Result(f, wf_name), queue, retention=keep)
        warn_nondeterministic(f, wf_name)  # a warning per call that would replay differently
        f.__durable_workflow__ = defn  # type: ignore[attr-defined]
        _workflows[wf_name] = defn
        return f

    return decorate(fn) if fn is not None else decorate


@overload
def action(fn: F, /) -> F: ...
@overload
def action(*, name: str | None = None, retry: Retry | None = None,
           timeout: float | timedelta | None = None, inline: bool | None = None,
           transaction: bool = False, isolation: str | None = None,
           heartbeat_timeout: float | timedelta | None = None, queue: str = DEFAULT_QUEUE,
           max_concurrent: int | None = None, rate: str | None = None) -> Callable[[F], F]: ...
def action(fn: Any = None, /, *, name: str | None = None, retry: Retry | None = None,
           timeout: float | timedelta | None = None, inline: bool | None = None,
           transaction: bool = False, isolation: str | None = None,
           heartbeat_timeout: float | timedelta | None = None, queue: str = DEFAULT_QUEUE,
           max_concurrent: int | None = None, rate: str | None = None) -> Any:
    """Declare an action: a function with side effects, run by a worker and recorded once.

    ``async def`` actions run on the worker's loop, plain functions in a thread. ``retry``
    (default ``Retry()``) and ``timeout`` (seconds per attempt, default none) apply per call.

    ``inline``: when the workflow's own worker hosts the action, its first attempt can run
    inside the workflow task and be recorded with that task's commit (like Temporal's local
    activities: no queue round trip). By default that happens for actions whose ``timeout``
    is at most half the worker's lease; ``True`` inlines any attempt (one that takes longer
    than half the lease is cancelled and run as a task of its own, so a plain function may
    then run twice), ``False`` never.

    ``transaction=True`` makes a database action: its first parameter receives a database
    connection in a transaction (at ``isolation``: ``"read_committed"``,
    ``"repeatable_read"`` or ``"serializable"``, the default) in which the action's
    completion is recorded too, so its writes take effect exactly once; an exception rolls
    them back and the attempt is retried. On PostgreSQL it is an ``async def`` receiving an
    ``asyncpg.Connection``; on SQLite a plain function receiving the ``sqlite3.Connection``.
    Database actions never run inline.

    ``heartbeat_timeout`` (seconds): a long action reports progress with
    ``durable.action_info().heartbeat(details)``; an attempt that reports nothing for this
    long has timed out (``TimeoutError``) and is retried. The details of its last heartbeat
    are kept with the call, and the next attempt (after a retry, or after its worker died)
    reads them as ``action_info().heartbeat_details``, to resume where it stopped. Actions
    with a heartbeat timeout never run inline.

    ``queue`` (default ``"default"``) is the task queue its calls go to unless
    ``ctx.run(..., queue=...)`` names another: only workers that host the action on that
    queue run them.

    ``max_concurrent`` (attempts running at once) and ``rate`` (attempts started, ``"100/s"``,
    ``"20/m"`` or ``"5/h"``) limit the action across every worker that shares the store; its
    calls wait, due, for room (``describe()`` says so). A limited action runs inline only
    while its limits have room: the worker then holds a slot of them for the attempt (see
    ``durable._worker._holds``).
    """
    check_queue(queue)
    limit = check_limit(max_concurrent, rate)

    level = _isolation(name, transaction, isolation)
    beat = check_positive_duration(heartbeat_timeout, "heartbeat_timeout")
    if transaction and inline:
        raise DatabaseActionError(f"action {name or '(unnamed)'}: database actions never run "
                                  "inline; drop inline=True", action=name, reason="inline")

    def decorate(f: F) -> F:
        act_name = check_id(f.__name__ if name is None else name, "an action name")
        _check_not_unbound_method(f, act_name)
        if transaction and not inspect.signature(f).parameters:
            raise DatabaseActionError(
                f"database action {act_name!r} needs a first parameter for its connection",
                action=act_name, reason="no connection parameter")
        defn = ActionDefinition(act_name, f, inspect.iscoroutinefunction(f), retry or Retry(),
                                None if timeout is None else seconds(timeout),
                                Params(f, act_name, skip_first=transaction), Result(f, act_name),
                                inline, transaction, level, beat, queue, limit)
        target = _method_stand_in(f) if inspect.ismethod(f) else f
        target.__durable_action__ = defn  # type: ignore[attr-defined]
        _actions[act_name] = defn
        return target  # pyright: ignore[reportReturnType]

    return decorate(fn) if fn is not None else decorate


def _method_stand_in(method: F) -> F:
    """What ``durable.action(obj.method)`` returns: a function that calls the bound method and
    carries its definition (a bound method takes no attributes). Pass it to ``ctx.run`` and
    ``Worker(actions=[...])``."""
    if inspect.iscoroutinefunction(method):
        async def call_async(*args: Any, **kwargs: Any) -> Any:
            return await method(*args, **kwargs)
        stand_in: Callable[..., Any] = call_async
    else:
        def call(*args: Any, **kwargs: Any) -> Any:
            return method(*args, **kwargs)
        stand_in = call
    functools.update_wrapper(stand_in, method)
    return stand_in  # type: ignore[return-value]


def _check_not_unbound_method(f: Callable[..., Any], name: str) -> None:
    """``@durable.action`` on a method in a class body would bind ``self`` to the first
    argument of every call: refuse it, and say how to register a method."""
    try:
        params = list(inspect.signature(f).parameters)
    except (TypeError, ValueError):  # no signature to read: Params reports it
        return
    if not inspect.ismethod(f) and params[:1] == ["self"] and "." in f.__qualname__:
        raise ValidationError(
            f"action {name!r} is a method ({f.__qualname__}) decorated in its class: an action "
            "is called without an instance. Decorate the bound method of the object instead, "
            "e.g. charge = durable.action(Payments(pool).charge), and pass that to ctx.run and "
            "Worker(actions=[...])", function=name, parameter="self")


def _isolation(name: str | None, transaction: bool, isolation: str | None) -> str:
    """The isolation level of a database action; a typed error for a bad one."""
    if isolation is None:
        return DEFAULT_ISOLATION
    if not transaction:
        raise DatabaseActionError(
            f"action {name or '(unnamed)'}: isolation={show(isolation)} needs transaction=True",
            action=name, reason="isolation without transaction")
    if isolation not in ISOLATION_LEVELS:
        raise DatabaseActionError(
            f"action {name or '(unnamed)'}: unknown isolation level {show(isolation)}; use one of "
            f"{', '.join(map(repr, ISOLATION_LEVELS))}", action=name, reason="isolation")
    return isolation


def workflow_definition(wf: Any, known: dict[str, WorkflowDefinition] | None = None) -> WorkflowDefinition:
    """The definition of a decorated workflow function or a workflow name."""
    if isinstance(wf, WorkflowDefinition):
        return wf
    defn = getattr(wf, "__durable_workflow__", None)
    if defn is not None:
        return defn  # type: ignore[no-any-return]
    if isinstance(wf, str):
        found = (known or {}).get(wf) or _workflows.get(wf)
        if found is not None:
            return found
        raise UnknownWorkflowError(f"no workflow named {show(wf)} is registered; decorate it with "
                                   "@durable.workflow and import its module", name=wf)
    raise UnknownWorkflowError(f"{show(wf)} is not a workflow; decorate it with @durable.workflow",
                               name=show(wf))


def action_definition(act: Any, known: dict[str, ActionDefinition] | None = None) -> ActionDefinition:
    """The definition of a decorated action function or an action name."""
    if isinstance(act, ActionDefinition):
        return act
    defn = getattr(act, "__durable_action__", None)
    if defn is not None:
        return defn  # type: ignore[no-any-return]
    if isinstance(act, str):
        found = (known or {}).get(act) or _actions.get(act)
        if found is not None:
            return found
        raise UnknownActionError(f"no action named {show(act)} is registered; decorate it with "
                                 "@durable.action and pass it in Worker(actions=[...])", name=act)
    raise UnknownActionError(f"{show(act)} is not an action; decorate it with @durable.action",
                             name=show(act))


def definitions_in(modules: Iterable[ModuleType]) -> tuple[dict[str, WorkflowDefinition],
                                                           dict[str, ActionDefinition]]:
    """The workflows and actions decorated in these modules (found among their globals),
    by name; a later module wins a name clash."""
    workflows: dict[str, WorkflowDefinition] = {}
    actions: dict[str, ActionDefinition] = {}
    for module in modules:
        for value in vars(module).values():
            wf = getattr(value, "__durable_workflow__", None)
            if isinstance(wf, WorkflowDefinition):
                workflows[wf.name] = wf
            act = getattr(value, "__durable_action__", None)
            if isinstance(act, ActionDefinition):
                actions[act.name] = act
    return workflows, actions
