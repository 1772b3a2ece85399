"""The PostgreSQL store's retention (``RetentionStore``, migration 0019).

Expired executions are read from ``executions_closed`` (closed executions by ``closed_at``,
their close time, migration 0024), the
oldest first, down to the shortest retention any setting or the default allows; each row is
then held to its own. A delete takes the executions' rows first (a concurrent writer that locks
one, to append or submit a request, waits and then finds it gone), then every table keyed by
(tenant, workflow id), in one transaction.
"""

from __future__ import annotations

from typing import Final, Mapping, Sequence

from .._retention import CHILD_TAG, RetentionSettings, Sweep, child_ids, children_of
from ._connection import PostgresBase

__all__ = ["PostgresRetention"]

_CLOSED: Final = "status IN ('completed', 'failed', 'cancelled')"

# $1 now, $2 default, $3 fixed, $4 tenant (NULL: all), $5 limit.
_EXPIRED: Final = f"""
SELECT e.tenant, e.workflow_id FROM executions AS e
LEFT JOIN workflow_retention AS w ON NOT $3 AND w.workflow = e.workflow
LEFT JOIN tenant_retention AS t ON NOT $3 AND t.tenant = e.tenant
WHERE e.{_CLOSED}
  AND e.closed_at <= $1 - CASE WHEN $3 THEN $2 ELSE least(
      $2, (SELECT min(seconds) FROM workflow_retention),
      (SELECT min(seconds) FROM tenant_retention)) END
  AND ($4::text IS NULL OR e.tenant = $4)
  AND e.closed_at <= $1 - coalesce(w.seconds, t.seconds, $2)
ORDER BY e.closed_at
LIMIT $5
"""
# The bodies of an execution's ChildInitiated events (any run): the tag after the array header.
_CHILD_STARTS: Final = ("SELECT body FROM events WHERE tenant = $1 AND workflow_id = $2 "
                        "AND position($3::bytea IN substring(body FROM 1 FOR 24)) BETWEEN 2 AND 4 "
                        "ORDER BY run_id, seq")
_STARTED: Final = (f"SELECT x.workflow_id, e.body FROM executions AS x JOIN events AS e "
                   f"ON e.tenant = x.tenant AND e.workflow_id = x.workflow_id "
                   f"AND e.run_id = x.run_id AND e.seq = 1 "
                   f"WHERE x.tenant = $1 AND x.workflow_id = ANY ($2::text[]) AND x.{_CLOSED}")
# Locked in one order, skipping rows another sweeper (or a writer) holds: they wait for the
# next pass, and concurrent sweeps never deadlock.
_DELETE_EXECUTIONS: Final = f"""
WITH doomed AS (SELECT workflow_id FROM executions
                WHERE tenant = $1 AND workflow_id = ANY ($2::text[]) AND {_CLOSED}
                ORDER BY workflow_id FOR UPDATE SKIP LOCKED)
DELETE FROM executions AS x USING doomed AS d
WHERE x.tenant = $1 AND x.workflow_id = d.workflow_id
RETURNING x.workflow_id
"""
# Every table whose rows belong to an execution (the conformance suite counts them all).
EXECUTION_TABLES: Final = ("events", "workflow_tasks", "action_tasks", "timers", "requests",
                           "snapshots", "action_results")
_DELETE_ROWS: Final = [f"DELETE FROM {table} WHERE tenant = $1 AND workflow_id = ANY ($2::text[])"
                       for table in EXECUTION_TABLES]
_DECLARE: Final = ("INSERT INTO workflow_retention (workflow, seconds) "
                   "SELECT * FROM unnest($1::text[], $2::float8[]) "
                   "ON CONFLICT (workflow) DO UPDATE SET seconds = excluded.seconds")
_FORGET: Final = "DELETE FROM workflow_retention WHERE workflow = ANY ($1::text[])"
_SET_TENANT: Final = ("INSERT INTO tenant_retention (tenant, seconds) VALUES ($1, $2) "
                      "ON CONFLICT (tenant) DO UPDATE SET seconds = excluded.seconds")
_CLEAR_TENANT: Final = "DELETE FROM tenant_retention WHERE tenant = $1"


class PostgresRetention(PostgresBase):
    """Rows of ``workflow_retention`` and ``tenant_retention``; sweeps over ``executions``."""

    async def declare_retention(self, workflows: Mapping[str, float | None]) -> None:
        """Record (None: forget) how long each workflow's closed executions are kept."""
        kept = {name: s for name, s in sorted(workflows.items()) if s is not None}
        forgotten = sorted(name for name, s in workflows.items() if s is None)
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                if kept:
                    await conn.execute(_DECLARE, list(kept), list(kept.values()))
                if forgotten:
                    await conn.execute(_FORGET, forgotten)
        except Exception as exc:
            raise await self._mapped(exc) from exc

    async def set_tenant_retention(self, tenant: str, seconds: float | None) -> None:
        """Set (None: clear) how long the tenant's closed executions are kept."""
        if seconds is None:
            await self._fetch(_CLEAR_TENANT, tenant)
        else:
            await self._fetch(_SET_TENANT, tenant, seconds)

    async def retention_settings(self) -> RetentionSettings:
        """The workflows' and tenants' settings."""
        workflows = await self._fetch("SELECT workflow, seconds FROM workflow_retention")
        tenants = await self._fetch("SELECT tenant, seconds FROM tenant_retention")
        return RetentionSettings({r[0]: r[1] for r in workflows}, {r[0]: r[1] for r in tenants})

    async def expired_executions(self, sweep: Sweep) -> list[tuple[str, str]]:
        """Closed executions past their retention, the oldest close first (see ``Sweep``)."""
        rows = await self._fetch(_EXPIRED, sweep.now, sweep.default, sweep.fixed, sweep.tenant,
                                 sweep.limit)
        return [(row[0], row[1]) for row in rows]

    async def closed_children(self, tenant: str, workflow_id: str) -> list[str]:
        """The execution's closed children that name it as their parent."""
        rows = await self._fetch(_CHILD_STARTS, tenant, workflow_id, CHILD_TAG)
        children = child_ids(row[0] for row in rows)
        if not children:
            return []
        started = await self._fetch(_STARTED, tenant, children)
        return children_of(workflow_id, ((row[0], row[1]) for row in started))

    async def delete_executions(self, tenant: str, workflow_ids: Sequence[str]) -> list[str]:
        """Delete the closed ones of these executions with all their rows (one transaction)."""
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                rows = await conn.fetch(_DELETE_EXECUTIONS, tenant, list(workflow_ids))
                taken = {row[0] for row in rows}
                deleted = [w for w in dict.fromkeys(workflow_ids) if w in taken]  # in order
                if deleted:
                    for statement in _DELETE_ROWS:
                        await conn.execute(statement, tenant, deleted)
        except Exception as exc:
            raise await self._mapped(exc) from exc
        return deleted
