"""Retention in a store: its settings, the closed executions that expired, and deleting every
row of an execution (``RetentionStore``); the sweep that drives them is ``durable._retention``.

An execution's row is written for the last time when it closes, so a closed execution's
``updated_at`` is its close time; stores index closed executions by it. How long one is kept
after it closed: the retention its workflow's code declares (``@durable.workflow(retention=)``,
written by the workers that host it), else its tenant's (``durable tenant retention``), else
the sweeper's default.

A child workflow goes with its parent: the sweep deletes a parent's closed children (found by
the parent's ``ChildInitiated`` events, and confirmed by the child's ``WorkflowStarted``
naming that parent) before the parent, whatever their own retention says.
"""

from __future__ import annotations

from typing import Final, Iterable, Mapping, Protocol, Sequence

import msgspec

from .._history import ChildInitiated, WorkflowStarted, decode_event

__all__ = ["CHILD_TAG", "RetentionSettings", "RetentionStore", "Sweep", "child_ids",
           "children_of"]

# How a ``ChildInitiated`` event's MessagePack body starts, after its array header (1 or 3
# bytes): the tag. SQL stores pick an execution's child starts out of its events by it.
CHILD_TAG: Final = msgspec.msgpack.encode("ChildInitiated")


class Sweep(msgspec.Struct, frozen=True):
    """What one pass asks for: closed executions that expired by ``now``, oldest close first.

    An execution expired when it closed at least its retention ago: its workflow's, else its
    tenant's, else ``default`` seconds (``math.inf``: kept unless a setting says otherwise).
    With ``fixed`` the settings are ignored and ``default`` applies to every execution (``durable
    gc --older-than``). ``tenant`` limits the pass to one tenant; ``limit`` is how many
    executions one pass (and one transaction) takes.
    """

    now: float
    default: float
    fixed: bool = False
    tenant: str | None = None
    limit: int = 100


class RetentionSettings(msgspec.Struct, frozen=True):
    """Retention periods in seconds: what workflows' code declares, and tenants' settings."""

    workflows: dict[str, float] = {}
    tenants: dict[str, float] = {}


class RetentionStore(Protocol):
    """Retention settings, expired executions, and deleting an execution with all its rows."""

    async def declare_retention(self, workflows: Mapping[str, float | None]) -> None:
        """Record how long each named workflow's closed executions are kept (None: forget the
        workflow's setting, so its tenant's or the default applies)."""
        ...

    async def set_tenant_retention(self, tenant: str, seconds: float | None) -> None:
        """Set (None: clear) how long the tenant's closed executions are kept."""
        ...

    async def retention_settings(self) -> RetentionSettings:
        """The workflows' and tenants' settings."""
        ...

    async def expired_executions(self, sweep: Sweep) -> list[tuple[str, str]]:
        """Up to ``sweep.limit`` closed executions that expired (see ``Sweep``), as (tenant,
        workflow id), the oldest close first."""
        ...

    async def closed_children(self, tenant: str, workflow_id: str) -> list[str]:
        """The workflow ids of the execution's children (started by any of its runs) that
        exist, have closed and name it as their parent."""
        ...

    async def delete_executions(self, tenant: str, workflow_ids: Sequence[str]) -> list[str]:
        """Delete those of the executions that are closed, with every row of theirs (each run's
        history, work, requests, snapshots and recorded outcomes), in one transaction; the
        workflow ids deleted."""
        ...


def child_ids(bodies: Iterable[bytes]) -> list[str]:
    """The child workflow ids in these event bodies' ``ChildInitiated`` events, in order."""
    found: list[str] = []
    for body in bodies:
        event = decode_event(body)
        if isinstance(event, ChildInitiated) and event.workflow_id not in found:
            found.append(event.workflow_id)
    return found


def children_of(parent: str, started: Iterable[tuple[str, bytes]]) -> list[str]:
    """Of (workflow id, body of its current run's ``WorkflowStarted``) pairs, the ids whose run
    names ``parent`` as its parent (an id reused by an unrelated execution does not)."""
    children: list[str] = []
    for workflow_id, body in started:
        event = decode_event(body)
        if isinstance(event, WorkflowStarted) and event.parent is not None \
                and event.parent.workflow_id == parent:
            children.append(workflow_id)
    return children
