"""durable: workflows as plain ``async def`` coroutines that survive crashes.

Every action call, timer and wait for an external event is recorded in a history; after a
crash any worker re-runs the coroutine against that history and it continues where it stopped.
"""

from . import errors
from ._client import Client, Description, WorkflowHandle
from ._codecs import AesGcmCodec, Codec, CodecChain, ZlibCodec
from ._connect import connect
from ._definitions import Retry, action, on_query, on_update, workflow
from ._guard import NondeterministicCallWarning
from ._history import Event, EventReceived
from ._history_list import History
from ._limits import QueueLimit
from ._replay import NonDeterminismWarning, WorkflowInfo
from ._replay._children import ChildHandle
from ._replay._external import ExternalHandle
from ._replay._info import ParentInfo
from ._replay._context import Context
from ._replay._replayer import Replayer, ReplayResult
from ._saga import Saga
from ._schedules._handle import ScheduleDescription, ScheduleHandle
from ._schedules._plan import Overlap
from ._stores._schedule_records import ScheduleRun
from ._telemetry._logs import configure_logging
from ._queries import UpdateHandle
from ._timetravel import StateAt
from ._worker import Worker
from ._worker._action_info import ActionInfo, action_info
from .errors import NonRetryable
from . import testing

__all__ = [
    "ActionInfo",
    "AesGcmCodec",
    "ChildHandle",
    "Client",
    "Codec",
    "CodecChain",
    "Context",
    "Description",
    "Event",
    "EventReceived",
    "ExternalHandle",
    "History",
    "NonDeterminismWarning",
    "NonRetryable",
    "NondeterministicCallWarning",
    "Overlap",
    "ParentInfo",
    "QueueLimit",
    "ReplayResult",
    "Replayer",
    "Retry",
    "Saga",
    "ScheduleDescription",
    "ScheduleHandle",
    "ScheduleRun",
    "StateAt",
    "UpdateHandle",
    "Worker",
    "WorkflowHandle",
    "WorkflowInfo",
    "ZlibCodec",
    "action",
    "action_info",
    "configure_logging",
    "connect",
    "errors",
    "on_query",
    "on_update",
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
