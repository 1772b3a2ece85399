"""The ``Dispatcher`` protocol: how workers learn which tasks to run.

The store is the truth; a dispatcher only carries hints (``TaskRef``) and turns them into
leased tasks with the store's compare-and-set claims. Losing a hint loses no work: the store's
outbox (``Store.dispatch_due``) announces it again.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, Sequence

from .._stores import ActionTask, TaskRef, WorkflowTask

__all__ = ["Claim", "ClaimSpec", "Dispatcher"]


class ClaimSpec(NamedTuple):
    """Who claims: the worker's identity, what it hosts and how long its leases last."""

    owner: str
    workflows: frozenset[str]
    actions: frozenset[str]
    lease: float


class Claim(NamedTuple):
    """A task leased to this worker; ``token`` is what ``ack`` needs (None when nothing)."""

    task: WorkflowTask | ActionTask
    token: Any = None


class Dispatcher(Protocol):
    """Carries task hints from whoever makes work runnable to the workers that run it."""

    async def publish(self, refs: Sequence[TaskRef]) -> None:
        """Announce tasks that became runnable (after the store committed them)."""

    async def receive(self, spec: ClaimSpec, *, limit: int, timeout: float) -> list[Claim]:
        """Up to ``limit`` tasks leased to ``spec.owner``; waits at most ``timeout`` seconds."""

    async def stick(self, owner: str, tenant: str, workflow_id: str, *, keep: bool) -> None:
        """Route the execution's next workflow tasks to worker ``owner``, which caches it
        (``keep``), or stop (the execution ended). A dispatcher may ignore this."""

    async def ack(self, claims: Sequence[Claim]) -> None:
        """The tasks' outcomes are committed: their hints can be forgotten."""

    async def close(self) -> None:
        """Release connections."""
