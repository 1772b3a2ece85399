"""Errors raised by durable, grouped by what you do about them.

::

    DurableError
    ├── InputError                     your input: fix the call (nothing was written)
    │   ├── ValidationError            arguments do not fit the signature, or a value its limits
    │   │   ├── PayloadError           a value cannot be encoded, or is too large
    │   │   └── InvalidScheduleError   a bad cron expression, interval, time zone or overlap policy
    │   ├── InvalidArgumentError       a bad value for durable's own API (also a ValueError)
    │   ├── ArgumentTypeError          an argument of the wrong type (also a TypeError)
    │   ├── UsageError                 a command line, or an object used outside its lifetime
    │   │   └── MissingExtraError      an optional package is not installed (also an ImportError)
    │   ├── UnknownWorkflowError       no workflow registered under that name
    │   ├── UnknownActionError         no action registered under that name
    │   ├── WorkflowNotFoundError      no execution with that id in that tenant
    │   ├── WorkflowClosedError        the execution has ended, it takes no events
    │   ├── WorkflowAlreadyStartedError  a workflow id is taken (a start's id policies)
    │   ├── ScheduleNotFoundError      no schedule with that id in that tenant
    │   ├── ScheduleAlreadyExistsError a different schedule has that id already
    │   ├── ActionTokenError           an async completion token no attempt waits for
    │   ├── TenantPermissionError      the client may not act for that tenant
    │   ├── HistoryError               a history that is damaged, or cannot be decoded or replayed
    │   └── HistoryRangeError          a moment before an execution or past its history
    ├── CodeError                      your code: fix it and deploy
    │   ├── IllegalWorkflowOperationError  I/O or blocking calls inside workflow code
    │   ├── DatabaseActionError        a database action its store cannot run as declared
    │   ├── NonDeterminismError        replay no longer matches history
    │   └── WorkflowHeldError          the execution's workflow tasks keep failing
    ├── RequestError                   a query or an update was not answered
    │   ├── QueryFailedError           its handler raised
    │   │   └── UnknownQueryError      no query handler of that name (also an InputError)
    │   ├── UpdateRejectedError        refused, nothing recorded: its validator raised
    │   │   └── UnknownUpdateError     no update handler of that name (also an InputError)
    │   └── RequestTimeoutError        no worker answered in time
    ├── InfrastructureError            the database, Redis or the network: retry, or fix the setup
    │   ├── StoreUnavailableError      the store cannot be reached (see __cause__)
    │   ├── StoreConfigurationError    the store is set up wrongly (a missing database, a password)
    │   ├── CodecError                 a payload codec could not encode or decode a payload
    │   │   └── UnknownKeyError        an encrypted payload names a key the codec does not hold
    │   └── ServerStoppedError         a server stopped before it started (also a RuntimeError)
    ├── OutcomeError                   how an execution, action or update ended (recorded)
    │   ├── WorkflowFailedError        the workflow raised
    │   ├── WorkflowCancelledError     the workflow was cancelled
    │   ├── ActionFailedError          an action failed after all its attempts
    │   ├── UpdateFailedError          an accepted update's handler raised
    │   └── CompensationError          compensations of a durable.Saga failed
    └── NonRetryable                   raise it from an action to stop retrying
        └── ActionLostError            the workers running an action's attempts kept dying

Catch a group to handle every error with one remedy (``except InputError``: show the caller
what to fix). A class marked "also" keeps the built-in base it had before the groups existed,
so ``except ValueError`` and the like go on catching what they caught. Every error carries
structured attributes and survives pickling, so it can cross process and thread boundaries
unchanged.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ActionFailedError",
    "ActionLostError",
    "ActionTokenError",
    "ArgumentTypeError",
    "CodeError",
    "CodecError",
    "CompensationError",
    "DatabaseActionError",
    "DurableError",
    "HistoryError",
    "HistoryRangeError",
    "IllegalWorkflowOperationError",
    "InfrastructureError",
    "InputError",
    "InvalidArgumentError",
    "InvalidScheduleError",
    "MissingExtraError",
    "NonDeterminismError",
    "NonRetryable",
    "OutcomeError",
    "PayloadError",
    "QueryFailedError",
    "RequestError",
    "RequestTimeoutError",
    "ScheduleAlreadyExistsError",
    "ScheduleNotFoundError",
    "ServerStoppedError",
    "StoreConfigurationError",
    "StoreUnavailableError",
    "TenantPermissionError",
    "UnknownActionError",
    "UnknownKeyError",
    "UnknownQueryError",
    "UnknownUpdateError",
    "UnknownWorkflowError",
    "UpdateFailedError",
    "UpdateRejectedError",
    "UsageError",
    "ValidationError",
    "WorkflowAlreadyStartedError",
    "WorkflowCancelledError",
    "WorkflowClosedError",
    "WorkflowFailedError",
    "WorkflowHeldError",
    "WorkflowNotFoundError",
]


class DurableError(Exception):
    """Base of every error durable raises."""

    message: str

    def __init__(self, message: str, **attrs: Any) -> None:
        super().__init__(message)
        self.message = message
        self._attrs = attrs
        for key, value in attrs.items():
            setattr(self, key, value)

    def __reduce__(self) -> Any:
        return (_rebuild, (type(self), self.message, self._attrs))


def _rebuild(cls: type[DurableError], message: str, attrs: dict[str, Any]) -> DurableError:
    err = cls.__new__(cls)
    DurableError.__init__(err, message, **attrs)
    return err


# ---- the groups -----------------------------------------------------------------------------


class InputError(DurableError):
    """Your input: a call, an argument or a command line that durable refuses.

    Nothing was written. The message says what to change; retrying the same call fails again.
    """


class CodeError(DurableError):
    """Your code: workflow or action code that durable cannot run as written.

    Fix the code and deploy it; executions held because of it then go on by themselves.
    """


class RequestError(DurableError):
    """A query or an update was not answered: its handler raised, refused it, or timed out.

    Nothing happened to the workflow unless the error says so (``UpdateFailedError``, an
    outcome, is the one that was recorded).
    """


class InfrastructureError(DurableError):
    """The database, Redis or the network failed: retry later, or fix the deployment.

    The execution's history is intact; work in flight is picked up again once the
    infrastructure is back.
    """


class OutcomeError(DurableError):
    """How an execution, an action or an update ended: recorded in history, final.

    Nothing is wrong with durable or your call: this is the result you asked for.
    """


# ---- your input -----------------------------------------------------------------------------


class ValidationError(InputError):
    """Arguments or a result do not match the type hints of the function's signature, or a
    value breaks one of durable's documented limits (an id, name or key that is empty, too
    long or has control characters; a NaN, infinite or too long duration).

    Nothing was written. Fix the call (``.function`` and ``.parameter`` name the culprit).
    In workflow code it is raised at the call, where the workflow can catch it.
    """

    function: str | None = None
    parameter: str | None = None


class PayloadError(ValidationError):
    """A value cannot be encoded with msgspec, could not be decoded again (a lone surrogate,
    an int beyond 64 bits, lists or dicts nested over 100 deep), or its encoding exceeds the
    size limit. ``.where`` names the value."""

    where: str | None = None
    size: int | None = None
    limit: int | None = None


class InvalidScheduleError(ValidationError):
    """A schedule's definition is invalid; nothing was written.

    ``.schedule_id`` names the schedule, ``.field`` the bad field (``cron``, ``every``,
    ``timezone``, ``overlap``, ``catchup_window``, ...) and ``.value`` what was given.
    """

    schedule_id: str
    field: str
    value: Any


class InvalidArgumentError(InputError, ValueError):
    """A value passed to durable's own API is malformed or out of range.

    A store URL, a Redis key prefix, a retry policy, the limits of a worker or a server, a
    moment of a virtual clock. Also a ``ValueError``, which it was before it had a type.
    """

    parameter: str | None = None


class ArgumentTypeError(InputError, TypeError):
    """An argument passed to durable's own API has the wrong type.

    An event or request name that is not a non-empty ``str``, a duration that is neither
    seconds nor a ``timedelta``, a plain ``def`` given to ``@durable.workflow``. Also a
    ``TypeError``, which it was before it had a type.
    """

    parameter: str | None = None


class UsageError(InputError):
    """durable is used in a way it cannot run.

    The ``durable`` command line as given: a malformed option or JSON value, a module or
    worker target that cannot be imported or used, options that do not go together, a missing
    extra (the CLI prints it as one ``error: ...`` line and exits with status 1). Or an object
    outside its lifetime: a ``durable.testing.Environment`` used outside ``async with``, or
    after its worker stopped.
    """


class MissingExtraError(UsageError, ImportError):
    """A feature needs an optional package that is not installed: ``.package``, which the
    extra ``.extra`` installs (the message says ``pip install 'durable[EXTRA]'``).

    The embedded SQLite path needs none; PostgreSQL needs ``durable[postgres]``, Redis
    dispatch ``durable[redis]``, ``durable server`` ``durable[server]``.
    """

    package: str
    extra: str


class UnknownWorkflowError(InputError):
    """No workflow is registered under ``.name``: register it with the worker or client."""

    name: str


class UnknownActionError(InputError):
    """No action is registered under ``.name``: pass it in ``Worker(actions=[...])``."""

    name: str
    workflow_id: str | None = None


class WorkflowNotFoundError(InputError):
    """No execution ``.workflow_id`` exists in tenant ``.tenant``."""

    workflow_id: str
    tenant: str


class WorkflowClosedError(InputError):
    """The execution ``.workflow_id`` has ended; it takes no more events."""

    workflow_id: str


class WorkflowAlreadyStartedError(InputError):
    """A start named a workflow id that an execution has already: nothing started.

    ``ctx.start_child`` with a taken id; ``client.start`` when the policies said no
    (``on_conflict="fail"``, or by default another workflow or other arguments than the
    running execution's; ``id_reuse="reject"``, or ``"allow_failed_only"`` after a completed
    run). ``.workflow_id`` and ``.tenant`` name it, ``.reason`` says why (``client.start``).
    Pass another ``id=`` (or none, for a fresh one), or the policy that fits.
    """

    workflow_id: str
    tenant: str
    reason: str


class ActionTokenError(InputError):
    """An async completion token (``durable.action_info().complete_later()``) that names no
    attempt waiting for its outcome: malformed, already completed or failed, or timed out
    (its action's timeouts ran out and a new attempt took over). Nothing was recorded.
    ``.reason`` says which."""

    reason: str


class ScheduleNotFoundError(InputError):
    """No schedule ``.schedule_id`` exists in tenant ``.tenant``."""

    schedule_id: str
    tenant: str


class ScheduleAlreadyExistsError(InputError):
    """Schedule ``.schedule_id`` exists in tenant ``.tenant`` with another definition.

    Pass ``replace=True`` to change it in place, or delete it first.
    """

    schedule_id: str
    tenant: str


class TenantPermissionError(InputError):
    """The client may not act for tenant ``.tenant``: it was connected for ``.allowed``.

    ``durable.connect(url, tenant="A")`` acts for tenant A only; a client that names other
    tenants (or all of them) must be connected with an explicit scope:
    ``tenants=["A", "B"]``, or ``tenants="*"`` for every tenant. Nothing was read or written.
    """


class HistoryError(InputError):
    """A history is malformed or damaged: it cannot be decoded, trusted or replayed.

    A stored history that fails its integrity check (a row missing, reordered, changed or
    undecodable: see ``durable verify``) says where: ``.tenant``, ``.workflow_id``,
    ``.run_id``, ``.seq`` (the first event found damaged), ``.damage`` (``"gap"``,
    ``"truncated"``, ``"checksum"``, ``"undecodable"`` or ``"misplaced"``) and ``.reason``
    (what that means); they are None for a file or list that is not a history. A worker holds
    such an execution (its workflow task is retried with backoff, ``describe().task_error``
    says why) instead of replaying what nobody wrote; restore the rows from a backup and it
    goes on.
    """

    tenant: str | None
    workflow_id: str | None
    run_id: str | None
    seq: int | None
    damage: str | None
    reason: str | None

    def __init__(self, message: str, *, tenant: str | None = None,
                 workflow_id: str | None = None, run_id: str | None = None,
                 seq: int | None = None, damage: str | None = None, reason: str | None = None,
                 **attrs: Any) -> None:
        super().__init__(message, tenant=tenant, workflow_id=workflow_id, run_id=run_id,
                         seq=seq, damage=damage, reason=reason, **attrs)


class HistoryRangeError(InputError):
    """``state_at`` was asked about a moment the history does not cover.

    ``.when`` is the moment asked for (a seq or epoch seconds); ``.first`` and ``.last``
    bound what there is (seqs 1 to the last, or the execution's start and last update).
    """

    workflow_id: str
    when: int | float
    first: int | float
    last: int | float


# ---- your code ------------------------------------------------------------------------------


class IllegalWorkflowOperationError(CodeError):
    """Workflow code tried I/O or another non-deterministic operation; use an action."""

    operation: str | None = None


class DatabaseActionError(CodeError):
    """A database action (``@durable.action(transaction=True)``) cannot run as declared.

    ``.action`` names it and ``.reason`` says why: an unknown isolation level, a store
    without transactions (memory), or a function of the wrong kind for the store (PostgreSQL
    runs ``async def`` actions with an asyncpg connection, SQLite plain functions with a
    ``sqlite3`` connection).
    """

    action: str | None
    reason: str


class NonDeterminismError(CodeError):
    """Replaying today's code issued a command that does not match the recorded history.

    ``.recorded`` is the recorded event (or None when the code issued an extra command),
    ``.command`` the new command (or None when the code stopped short), ``.location`` the
    ``file:line`` that issued it. The execution is held, not failed: deploy code that matches
    its history and it continues.
    """

    recorded: Any
    command: Any
    location: str | None
    workflow_id: str | None


class WorkflowHeldError(CodeError):
    """The execution ``.workflow_id`` cannot go on: its workflow task fails every time.

    ``.task_error`` says why (typically a ``NonDeterminismError``). A worker holds such an
    execution and retries it with backoff until code that can run it is deployed;
    ``durable.testing.Environment`` raises this instead of waiting for that.
    """

    workflow_id: str
    task_error: Any


# ---- requests -------------------------------------------------------------------------------


class QueryFailedError(RequestError):
    """A query could not be answered: its handler raised, or the workflow could not be loaded.

    ``.workflow_id`` and ``.name`` name the query; ``.error_type`` and ``.error_message``
    describe what went wrong in the worker. Nothing was recorded.
    """

    workflow_id: str
    name: str
    error_type: str
    error_message: str
    traceback: str | None = None


class UnknownQueryError(QueryFailedError, InputError):
    """The workflow registered no query handler ``.name``; ``.known`` lists the ones it has."""

    known: list[str] | None = None


class UpdateRejectedError(RequestError):
    """An update was refused before it was recorded: nothing happened to the workflow.

    Its validator raised, its arguments do not fit the handler, or the workflow has ended or
    cannot be loaded (``.error_type`` and ``.error_message`` say which). Sending it again,
    even with the same idempotency key, validates it again.
    """

    workflow_id: str
    name: str
    error_type: str
    error_message: str
    traceback: str | None = None


class UnknownUpdateError(UpdateRejectedError, InputError):
    """The workflow registered no update handler ``.name``; ``.known`` lists the ones it has."""

    known: list[str] | None = None


class RequestTimeoutError(RequestError):
    """No worker answered a query or update within ``.timeout`` seconds.

    ``.kind`` is ``"query"`` or ``"update"``, ``.request_id`` identifies it and ``.accepted``
    says whether an update had been recorded (its handler then still finishes: call
    ``handle.update`` again with the same idempotency key to wait for its outcome).
    """

    kind: str
    name: str
    request_id: str
    workflow_id: str
    timeout: float | None
    accepted: bool


# ---- infrastructure -------------------------------------------------------------------------


class StoreUnavailableError(InfrastructureError):
    """The store could not be reached or answered with an error; the cause is ``__cause__``."""

    url: str | None = None


class StoreConfigurationError(InfrastructureError):
    """The store's server refused its setup: retrying will not help, fixing it will.

    A PostgreSQL database that does not exist (the message names it and says to create it),
    a missing schema, a wrong user or password. ``.url`` is the store's URL (password
    redacted), ``.sqlstate`` the server's code; the driver's error is ``__cause__``.
    """

    url: str | None = None
    sqlstate: str | None = None


class CodecError(InfrastructureError):
    """A payload codec (``durable.connect(codec=...)``) could not encode or decode a payload:
    a wrong key, a payload damaged at rest, a codec that raised or returned something other
    than ``bytes``. Nothing was written or lost: fix the codec's setup (give it the key) and
    the work goes on where it stopped. ``.where`` names the payload, ``.codec`` the codec;
    the codec's own error is ``__cause__``.
    """

    where: str | None = None
    codec: str | None = None


class UnknownKeyError(CodecError):
    """An encrypted payload names a key id (``.key_id``) that the codec does not hold: add the
    key (keys that encrypted payloads still at rest must stay known after a rotation)."""

    key_id: str | None = None


class ServerStoppedError(InfrastructureError, RuntimeError):
    """A durable server's ``run()`` ended before the server started.

    Await ``run()`` (or leave ``async with Server(...)``) for why: typically an HTTP port in
    use or a store that cannot be reached. Also a ``RuntimeError``, which it was before it had
    a type.
    """


# ---- outcomes -------------------------------------------------------------------------------


class WorkflowFailedError(OutcomeError):
    """The workflow raised; ``.error_type`` and ``.error_message`` describe the exception."""

    workflow_id: str
    error_type: str
    error_message: str
    traceback: str | None = None


class WorkflowCancelledError(OutcomeError):
    """The workflow was cancelled before it produced a result."""

    workflow_id: str


class ActionFailedError(OutcomeError):
    """An action failed on its last attempt.

    ``.action`` names it, ``.error_type`` and ``.error_message`` describe the last error,
    ``.attempts`` counts the attempts made.
    """

    action: str
    error_type: str
    error_message: str
    attempts: int


class UpdateFailedError(OutcomeError):
    """An accepted update's handler raised (recorded in history as ``UpdateCompleted``).

    ``.error_type`` and ``.error_message`` describe the exception; ``WorkflowClosedError``
    means the workflow ended before the handler finished.
    """

    workflow_id: str
    name: str
    error_type: str
    error_message: str
    traceback: str | None = None


class CompensationError(OutcomeError):
    """``Saga.compensate()`` ran every compensation, and some failed.

    ``.failures`` lists them as ``(compensation, error type, error message)``. (When a saga
    compensates because its block raised, the original exception propagates instead, with a
    note per failed compensation.)
    """

    failures: list[tuple[str, str, str]]


# ---- steering retries -----------------------------------------------------------------------


class NonRetryable(DurableError):
    """Raise from an action to fail it now, without further attempts."""


class ActionLostError(NonRetryable):
    """Every attempt of an action was used up by workers that stopped mid-attempt.

    Recorded as the action's failure (``ActionFailedError.error_type == "ActionLostError"``)
    when a worker claims an attempt beyond the retry policy's last: the workers before it
    were killed or lost their lease, so none recorded an outcome.
    """
