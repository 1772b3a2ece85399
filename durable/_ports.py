"""What the worker, schedules, queries and time travel use of a client and its handles.

``_client`` builds on those modules, so they name the client by these Protocols rather than
import it back: :class:`durable.Client` and ``WorkflowHandle`` satisfy them structurally.
"""

from __future__ import annotations

from typing import Protocol

from ._clock import Clock
from ._definitions import WorkflowDefinition
from ._dispatch import Dispatcher
from ._stores import ExecutionRecord, Store, TaskRef, WorkflowTask

__all__ = ["ClientPort", "EagerWorker", "HandlePort"]


class EagerWorker(Protocol):
    """A running worker to which its client hands the executions it starts (eager start)."""

    @property
    def identity(self) -> str: ...

    @property
    def lease(self) -> float: ...

    def takes_eager(self, workflow: str, tenant: str) -> bool: ...

    def run_eager(self, task: WorkflowTask) -> bool: ...

    def unreserve(self, count: int) -> None: ...


class ClientPort(Protocol):
    """A client: its store, clock, dispatcher and polling interval, its running workers and its wake-ups."""

    @property
    def store(self) -> Store: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def dispatcher(self) -> Dispatcher: ...

    @property
    def poll_interval(self) -> float: ...

    @property
    def max_payload_bytes(self) -> int: ...

    @property
    def _workers(self) -> list[EagerWorker]: ...

    async def publish(self, refs: list[TaskRef], *, sticky: bool = True) -> None: ...

    def acts_for(self, tenant: str) -> str: ...


class HandlePort(Protocol):
    """A handle to one execution."""

    @property
    def client(self) -> ClientPort: ...

    @property
    def tenant(self) -> str: ...

    @property
    def workflow_id(self) -> str: ...

    @property
    def _definition(self) -> WorkflowDefinition | None: ...

    async def _record(self) -> ExecutionRecord: ...
