"""durable: workflows as plain ``async def`` coroutines that survive crashes.

Every action call, timer and wait for an external event is recorded in a history; after a
crash any worker re-runs the coroutine against that history and it continues where it stopped.
"""

from . import errors
from ._client import Client, Description, WorkflowHandle, connect
from ._definitions import Retry, action, workflow
from ._guard import NondeterministicCallWarning
from ._history import Event, EventReceived, History
from ._limits import QueueLimit
from ._replay import NonDeterminismWarning, WorkflowInfo
from ._replay._children import ChildHandle
from ._replay._context import Context
from ._replay._replayer import Replayer, ReplayResult
from ._saga import Saga
from ._schedules._handle import ScheduleDescription, ScheduleHandle
from ._schedules._plan import Overlap
from ._stores._schedule_records import ScheduleRun
from ._timetravel import StateAt
from ._worker import Worker
from ._worker._action_info import ActionInfo, action_info
from .errors import NonRetryable
from . import testing

__all__ = [
    "ActionInfo",
    "ChildHandle",
    "Client",
    "Context",
    "Description",
    "Event",
    "EventReceived",
    "History",
    "NonDeterminismWarning",
    "NonRetryable",
    "NondeterministicCallWarning",
    "Overlap",
    "QueueLimit",
    "ReplayResult",
    "Replayer",
    "Retry",
    "Saga",
    "ScheduleDescription",
    "ScheduleHandle",
    "ScheduleRun",
    "StateAt",
    "Worker",
    "WorkflowHandle",
    "WorkflowInfo",
    "action",
    "action_info",
    "connect",
    "errors",
    "testing",
    "workflow",
]

def _public_module() -> None:
    """Show exported names as ``durable.X`` (in reprs, docs and tracebacks)."""
    for name in __all__:
        obj = globals()[name]
        if getattr(obj, "__module__", "").startswith("durable._"):
            try:
                obj.__module__ = "durable"
            except (AttributeError, TypeError):
                pass


_public_module()
del _public_module
