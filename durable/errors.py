"""Errors raised by durable, split by what you do about them.

::

    DurableError
    ├── ValidationError            your input: arguments or results do not fit the signature
    │   ├── PayloadError           a value cannot be encoded, or is too large
    │   └── InvalidScheduleError   a bad cron expression, interval, time zone or overlap policy
    ├── UnknownWorkflowError       your input: no workflow registered under that name
    ├── UnknownActionError         your input: no action registered under that name
    ├── WorkflowNotFoundError      your input: no execution with that id in that tenant
    ├── WorkflowClosedError        your input: the execution has ended, it takes no events
    ├── WorkflowAlreadyStartedError  your input: a child workflow's id is taken
    ├── QueryFailedError           a query got no value: its handler raised
    │   └── UnknownQueryError      your input: the workflow has no query handler of that name
    ├── UpdateRejectedError        an update was refused, nothing recorded: its validator raised
    │   └── UnknownUpdateError     your input: the workflow has no update handler of that name
    ├── UpdateFailedError          outcome: an accepted update's handler raised (recorded)
    ├── RequestTimeoutError        no worker answered a query or update in time
    ├── ScheduleNotFoundError      your input: no schedule with that id in that tenant
    ├── ScheduleAlreadyExistsError your input: a different schedule has that id already
    ├── IllegalWorkflowOperationError  your code: I/O or blocking calls inside workflow code
    ├── DatabaseActionError        your code: a database action its store cannot run as declared
    ├── NonDeterminismError        your code changed: replay no longer matches history
    ├── WorkflowHeldError          your code: the execution's workflow tasks keep failing
    ├── HistoryError               a history that cannot be replayed (malformed, corrupt)
    ├── HistoryRangeError          your input: a moment before an execution or past its history
    ├── StoreUnavailableError      infrastructure: the database cannot be reached (see __cause__)
    ├── ActionFailedError          outcome: an action failed after all its attempts
    ├── CompensationError          outcome: compensations of a durable.Saga failed
    ├── WorkflowFailedError        outcome: the workflow raised
    ├── WorkflowCancelledError     outcome: the workflow was cancelled
    └── NonRetryable               raise it from an action to stop retrying

Every error carries structured attributes and survives pickling, so it can cross process and
thread boundaries unchanged.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ActionFailedError",
    "CompensationError",
    "DatabaseActionError",
    "DurableError",
    "HistoryError",
    "HistoryRangeError",
    "IllegalWorkflowOperationError",
    "InvalidScheduleError",
    "NonDeterminismError",
    "NonRetryable",
    "PayloadError",
    "QueryFailedError",
    "RequestTimeoutError",
    "ScheduleAlreadyExistsError",
    "ScheduleNotFoundError",
    "StoreUnavailableError",
    "UnknownActionError",
    "UnknownQueryError",
    "UnknownUpdateError",
    "UnknownWorkflowError",
    "UpdateFailedError",
    "UpdateRejectedError",
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


class ValidationError(DurableError):
    """Arguments or a result do not match the type hints of the function's signature.

    Nothing was written. Fix the call (``.function`` and ``.parameter`` name the culprit).
    """


class PayloadError(ValidationError):
    """A value cannot be encoded with msgspec, or its encoding exceeds the size limit."""


class InvalidScheduleError(ValidationError):
    """A schedule's definition is invalid; nothing was written.

    ``.schedule_id`` names the schedule, ``.field`` the bad field (``cron``, ``every``,
    ``timezone``, ``overlap``, ``catchup_window``, ...) and ``.value`` what was given.
    """


class ScheduleNotFoundError(DurableError):
    """No schedule ``.schedule_id`` exists in tenant ``.tenant``."""


class ScheduleAlreadyExistsError(DurableError):
    """Schedule ``.schedule_id`` exists in tenant ``.tenant`` with another definition.

    Pass ``replace=True`` to change it in place, or delete it first.
    """


class UnknownWorkflowError(DurableError):
    """No workflow is registered under ``.name``: register it with the worker or client."""


class UnknownActionError(DurableError):
    """No action is registered under ``.name``: pass it in ``Worker(actions=[...])``."""


class WorkflowNotFoundError(DurableError):
    """No execution ``.workflow_id`` exists in tenant ``.tenant``."""


class WorkflowClosedError(DurableError):
    """The execution ``.workflow_id`` has ended; it takes no more events."""


class WorkflowAlreadyStartedError(DurableError):
    """``ctx.start_child`` named workflow id ``.workflow_id`` of tenant ``.tenant``, which an
    execution has already: nothing was started. Pass another ``id=`` (or none, for a fresh one).
    """


class QueryFailedError(DurableError):
    """A query could not be answered: its handler raised, or the workflow could not be loaded.

    ``.workflow_id`` and ``.name`` name the query; ``.error_type`` and ``.error_message``
    describe what went wrong in the worker. Nothing was recorded.
    """


class UnknownQueryError(QueryFailedError):
    """The workflow registered no query handler ``.name``; ``.known`` lists the ones it has."""


class UpdateRejectedError(DurableError):
    """An update was refused before it was recorded: nothing happened to the workflow.

    Its validator raised, its arguments do not fit the handler, or the workflow has ended or
    cannot be loaded (``.error_type`` and ``.error_message`` say which). Sending it again,
    even with the same idempotency key, validates it again.
    """


class UnknownUpdateError(UpdateRejectedError):
    """The workflow registered no update handler ``.name``; ``.known`` lists the ones it has."""


class UpdateFailedError(DurableError):
    """An accepted update's handler raised (recorded in history as ``UpdateCompleted``).

    ``.error_type`` and ``.error_message`` describe the exception; ``WorkflowClosedError``
    means the workflow ended before the handler finished.
    """


class RequestTimeoutError(DurableError):
    """No worker answered a query or update within ``.timeout`` seconds.

    ``.kind`` is ``"query"`` or ``"update"``, ``.request_id`` identifies it and ``.accepted``
    says whether an update had been recorded (its handler then still finishes: call
    ``handle.update`` again with the same idempotency key to wait for its outcome).
    """


class IllegalWorkflowOperationError(DurableError):
    """Workflow code tried I/O or another non-deterministic operation; use an action."""


class DatabaseActionError(DurableError):
    """A database action (``@durable.action(transaction=True)``) cannot run as declared.

    ``.action`` names it and ``.reason`` says why: an unknown isolation level, a store
    without transactions (memory), or a function of the wrong kind for the store (PostgreSQL
    runs ``async def`` actions with an asyncpg connection, SQLite plain functions with a
    ``sqlite3`` connection).
    """


class NonDeterminismError(DurableError):
    """Replaying today's code issued a command that does not match the recorded history.

    ``.recorded`` is the recorded event (or None when the code issued an extra command),
    ``.command`` the new command (or None when the code stopped short), ``.location`` the
    ``file:line`` that issued it. The execution is held, not failed: deploy code that matches
    its history and it continues.
    """


class WorkflowHeldError(DurableError):
    """The execution ``.workflow_id`` cannot go on: its workflow task fails every time.

    ``.task_error`` says why (typically a ``NonDeterminismError``). A worker holds such an
    execution and retries it with backoff until code that can run it is deployed;
    ``durable.testing.Environment`` raises this instead of waiting for that.
    """


class HistoryError(DurableError):
    """A history is malformed: it cannot be decoded or replayed."""


class HistoryRangeError(DurableError):
    """``state_at`` was asked about a moment the history does not cover.

    ``.when`` is the moment asked for (a seq or epoch seconds); ``.first`` and ``.last``
    bound what there is (seqs 1 to the last, or the execution's start and last update).
    """


class StoreUnavailableError(DurableError):
    """The store could not be reached or answered with an error; the cause is ``__cause__``."""


class ActionFailedError(DurableError):
    """An action failed on its last attempt.

    ``.action`` names it, ``.error_type`` and ``.error_message`` describe the last error,
    ``.attempts`` counts the attempts made.
    """


class CompensationError(DurableError):
    """``Saga.compensate()`` ran every compensation, and some failed.

    ``.failures`` lists them as ``(compensation, error type, error message)``. (When a saga
    compensates because its block raised, the original exception propagates instead, with a
    note per failed compensation.)
    """


class WorkflowFailedError(DurableError):
    """The workflow raised; ``.error_type`` and ``.error_message`` describe the exception."""


class WorkflowCancelledError(DurableError):
    """The workflow was cancelled before it produced a result."""


class NonRetryable(DurableError):
    """Raise from an action to fail it now, without further attempts."""
