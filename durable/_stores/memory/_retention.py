"""The memory store's retention (``RetentionStore``): settings in dicts, deletes from every
dict an execution has entries in."""

from __future__ import annotations

from typing import Mapping, Sequence

from .._records import TERMINAL_STATUSES, ExecutionRecord
from .._retention import RetentionSettings, Sweep, child_ids, children_of
from ._heartbeats import MemoryHeartbeats

__all__ = ["MemoryRetention"]


class MemoryRetention(MemoryHeartbeats):
    """Retention settings by workflow and by tenant; a sweep scans the executions."""

    _workflow_retention: dict[str, float]
    _tenant_retention: dict[str, float]

    async def declare_retention(self, workflows: Mapping[str, float | None]) -> None:
        """Record (None: forget) how long each workflow's closed executions are kept."""
        _put(self._settings()[0], workflows)

    async def set_tenant_retention(self, tenant: str, seconds: float | None) -> None:
        """Set (None: clear) how long the tenant's closed executions are kept."""
        _put(self._settings()[1], {tenant: seconds})

    async def retention_settings(self) -> RetentionSettings:
        """The workflows' and tenants' settings."""
        workflows, tenants = self._settings()
        return RetentionSettings(dict(workflows), dict(tenants))

    async def expired_executions(self, sweep: Sweep) -> list[tuple[str, str]]:
        """Closed executions past their retention, the oldest close first (see ``Sweep``)."""
        workflows, tenants = self._settings()

        def keep_for(r: ExecutionRecord) -> float:
            if sweep.fixed:
                return sweep.default
            return workflows.get(r.workflow, tenants.get(r.tenant, sweep.default))

        expired = [r for r in self._executions.values()
                   if r.status in TERMINAL_STATUSES and (sweep.tenant in (None, r.tenant))
                   and r.updated_at <= sweep.now - keep_for(r)]
        expired.sort(key=lambda r: r.updated_at)
        return [(r.tenant, r.workflow_id) for r in expired[:sweep.limit]]

    async def closed_children(self, tenant: str, workflow_id: str) -> list[str]:
        """The execution's closed children that name it as their parent."""
        bodies = [row[1] for run_id in self._runs.get((tenant, workflow_id), [])
                  for row in self._histories.get((tenant, workflow_id, run_id), [])]
        started: list[tuple[str, bytes]] = []
        for child in child_ids(bodies):
            record = self._executions.get((tenant, child))
            rows = self._histories.get((tenant, child, record.run_id), []) if record else []
            if record is not None and record.status in TERMINAL_STATUSES and rows:
                started.append((child, rows[0][1]))
        return children_of(workflow_id, started)

    async def delete_executions(self, tenant: str, workflow_ids: Sequence[str]) -> list[str]:
        """Delete the closed ones of these executions with every entry of theirs."""
        deleted: list[str] = []
        for workflow_id in dict.fromkeys(workflow_ids):
            record = self._executions.get((tenant, workflow_id))
            if record is None or record.status not in TERMINAL_STATUSES:
                continue
            self._forget((tenant, workflow_id))
            deleted.append(workflow_id)
        return deleted

    def _forget(self, key: tuple[str, str]) -> None:
        del self._executions[key]
        for run_id in self._runs.pop(key, []):
            run = (*key, run_id)
            self._histories.pop(run, None)
            self._dedup.pop(run, None)
            self._snapshots.pop(run, None)
            self._drop_run_work(run)
        self._wf_tasks.pop(key, None)
        self._requests.pop(key, None)
        for action in [k for k in self._beats if k[:2] == key]:
            del self._beats[action]

    def _settings(self) -> tuple[dict[str, float], dict[str, float]]:
        if not hasattr(self, "_workflow_retention"):
            self._workflow_retention, self._tenant_retention = {}, {}
        return self._workflow_retention, self._tenant_retention


def _put(table: dict[str, float], settings: Mapping[str, float | None]) -> None:
    for key, seconds in settings.items():
        if seconds is None:
            table.pop(key, None)
        else:
            table[key] = seconds
