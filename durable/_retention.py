"""Retention: closed executions are deleted, with every row of theirs, once they have been
closed for longer than their retention.

How long is the store's business (``_stores._retention``): the workflow's declared retention
(``@durable.workflow(retention=...)``), else its tenant's (``client.set_retention``, ``durable
tenant retention``), else the sweeper's default, 30 days. Who sweeps: ``durable server`` (a
loop of its own), or the embedded dispatcher of a worker when no server runs (the SQLite
default); ``durable gc`` (``client.collect_garbage``) by hand.

A pass takes the ``limit`` oldest expired executions and deletes them, each one's closed
children (and theirs) first, in transactions of at most ``limit`` executions: a parent is
deleted in the same transaction as its last children or a later one, so a pass cut short
leaves no child behind that the next pass cannot find again from its parent.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Final, NamedTuple

from ._clock import Clock
from ._stores import Store, Sweep
from ._validate import check_count, check_retention

__all__ = ["DEFAULT_RETENTION", "GC_BATCH", "GC_EVERY", "Retention", "Swept", "sweep"]

DEFAULT_RETENTION: Final = 30 * 86400.0  # seconds a closed execution is kept by default
GC_EVERY: Final = 60.0  # seconds between sweeps that found nothing more to delete
GC_BATCH: Final = 100  # executions per pass and per transaction


class Swept(NamedTuple):
    """What one pass deleted, (tenant, workflow id) each, and whether more may have expired."""

    deleted: list[tuple[str, str]]
    more: bool


async def sweep(store: Store, request: Sweep, *, dry_run: bool = False) -> Swept:
    """One pass: delete (``dry_run``: only list) the expired executions ``request`` finds,
    each after its closed children."""
    roots = await store.expired_executions(request)
    order: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for tenant, workflow_id in roots:
        await _descendants_first(store, tenant, workflow_id, seen, order)
    more = len(roots) >= request.limit
    if dry_run:
        return Swept(order, more)
    deleted: list[tuple[str, str]] = []
    for tenant, chunk in _chunks(order, request.limit):
        deleted.extend((tenant, w) for w in await store.delete_executions(tenant, chunk))
    return Swept(deleted, more)


async def _descendants_first(store: Store, tenant: str, workflow_id: str,
                             seen: set[tuple[str, str]], order: list[tuple[str, str]]) -> None:
    if (tenant, workflow_id) in seen:
        return
    seen.add((tenant, workflow_id))
    for child in await store.closed_children(tenant, workflow_id):
        await _descendants_first(store, tenant, child, seen, order)
    order.append((tenant, workflow_id))


def _chunks(order: list[tuple[str, str]], size: int) -> list[tuple[str, list[str]]]:
    """Runs of one tenant's workflow ids, at most ``size`` long, in order."""
    chunks: list[tuple[str, list[str]]] = []
    for tenant, workflow_id in order:
        if not chunks or chunks[-1][0] != tenant or len(chunks[-1][1]) >= size:
            chunks.append((tenant, []))
        chunks[-1][1].append(workflow_id)
    return chunks


class Retention:
    """The client's retention calls (a base of ``Client``, which provides what is declared
    here)."""

    store: Store
    clock: Clock

    def _tenant(self, tenant: str | None) -> str:
        raise NotImplementedError

    def _tenant_filter(self, tenant: str | None, all_tenants: bool, what: str) -> str | None:
        raise NotImplementedError

    async def set_retention(self, retention: float | timedelta | None, *,
                            tenant: str | None = None) -> None:
        """Keep the closed executions of the client's tenant (or ``tenant``) for ``retention``
        (seconds or a ``timedelta``; None: clear the setting, so the default applies). A
        workflow's own ``@durable.workflow(retention=...)`` comes first."""
        seconds = check_retention(retention)
        await self.store.set_tenant_retention(self._tenant(tenant), seconds)

    async def collect_garbage(self, older_than: float | timedelta | None = None, *,
                              tenant: str | None = None, all_tenants: bool = False,
                              dry_run: bool = False, retention: float | timedelta | None =
                              DEFAULT_RETENTION, limit: int = GC_BATCH) -> list[tuple[str, str]]:
        """Delete closed executions that expired, with every row of theirs; (tenant, workflow
        id) of each one deleted, children before their parent.

        With ``older_than`` (seconds or a ``timedelta``), every execution closed longer ago
        than that expired; without, each one's retention applies (its workflow's, else its
        tenant's, else ``retention``; None: kept unless a setting says otherwise). The client's
        tenant (or ``tenant``, or with ``all_tenants=True`` every tenant). Executions go
        ``limit`` at a time, one transaction each. ``dry_run`` deletes nothing and lists what
        one pass would delete (at most ``limit`` expired executions, with their children).
        """
        fixed = check_retention(older_than, "older_than")
        default = check_retention(retention)
        limit = check_count(limit, "collect_garbage(limit=)", minimum=1, maximum=10_000)
        where = self._tenant_filter(tenant, all_tenants, "collect_garbage")
        cutoff = fixed if fixed is not None else (math.inf if default is None else default)
        deleted: list[tuple[str, str]] = []
        while True:
            request = Sweep(self.clock(), cutoff, fixed is not None, where, limit)
            swept = await sweep(self.store, request, dry_run=dry_run)
            deleted.extend(swept.deleted)
            if dry_run or not swept.more or not swept.deleted:
                return deleted
