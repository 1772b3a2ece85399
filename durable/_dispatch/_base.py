"""The ``Dispatcher`` protocol: how workers learn which tasks to run.

The store is the truth; a dispatcher only carries hints (``TaskRef``) and turns them into
leased tasks with the store's compare-and-set claims. Losing a hint loses no work: the store's
outbox (``Store.dispatch_due``) announces it again.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple, Protocol, Sequence

from .._limits import RouteLimit
from .._stores import ActionTask, TaskRef, WorkflowTask

__all__ = ["Claim", "ClaimSpec", "Dispatcher", "room_for"]


class ClaimSpec(NamedTuple):
    """Who claims: the worker's identity, what it hosts and how long its leases last.

    ``history_after(tenant, workflow_id)``: the seq up to which the worker already holds an
    execution's history (its sticky cache; 0 when it holds none), so that a claim can bring
    the rest along (``Store.claim_refs``).
    """

    owner: str
    workflows: frozenset[str]
    actions: frozenset[str]
    lease: float
    history_after: Callable[[str, str], int] | None = None
    # hosted action routes with limits, their own or their queue's (``_limits``)
    limits: Mapping[str, RouteLimit] = {}


def room_for(kind: str, limit: int, kinds: Mapping[str, int] | None) -> int:
    """How many tasks of ``kind`` (``"w"``, ``"a"``) a claim with room for ``limit`` more may
    take under ``receive``'s ``kinds`` (None: no cap of its own)."""
    return limit if kinds is None else min(limit, kinds.get(kind, 0))


class Claim(NamedTuple):
    """A task leased to this worker; ``token`` is what ``ack`` needs (None when nothing)."""

    task: WorkflowTask | ActionTask
    token: Any = None


class Dispatcher(Protocol):
    """Carries task hints from whoever makes work runnable to the workers that run it."""

    async def publish(self, refs: Sequence[TaskRef], *, sticky: bool = True) -> None:
        """Announce tasks that became runnable (after the store committed them).

        ``sticky=False``: the tasks stayed unclaimed (the store's outbox announces them again),
        so their hints ignore sticky routes and go where every worker reads them."""
        ...

    async def receive(self, spec: ClaimSpec, *, limit: int, timeout: float,
                      kinds: Mapping[str, int] | None = None) -> list[Claim]:
        """Up to ``limit`` tasks leased to ``spec.owner``, with ``kinds`` at most so many of
        each kind (``"w"`` workflow tasks, ``"a"`` action tasks; None: any mix); waits at
        most ``timeout`` seconds."""
        ...

    async def stick(self, owner: str, tenant: str, workflow_id: str, *, keep: bool) -> float:
        """Route the execution's next workflow tasks to worker ``owner``, which caches it
        (``keep``: returns how many seconds the route lasts unless renewed), or stop routing
        them to ``owner`` (it evicted the execution). A dispatcher may ignore this."""
        ...

    async def forget(self, tenant: str, workflow_id: str) -> None:
        """The execution ended: drop its route, whichever worker holds it."""
        ...

    async def forget_worker(self, owner: str) -> None:
        """Worker ``owner`` died: stop routing hints to it, and announce again the hints it
        held that are not done. A dispatcher that routes nothing to a worker does nothing."""
        ...

    async def ack(self, claims: Sequence[Claim]) -> None:
        """The tasks' outcomes are committed: their hints can be forgotten."""
        ...

    async def retire(self, owner: str) -> None:
        """Worker ``owner`` stops claiming: hand back the hints it received and did not
        claim, so that other workers get them now (not once they are taken over)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
