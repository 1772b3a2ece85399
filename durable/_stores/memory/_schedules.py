"""The memory store's schedules (``ScheduleStore``), keyed by (tenant, schedule_id)."""

from __future__ import annotations

from .._schedule_records import ScheduleRecord
from ._state import MemoryState, ScheduleRow

__all__ = ["MemorySchedules"]


class MemorySchedules(MemoryState):
    """Schedules in the state's dict, leased to one scheduler at a time."""

    async def create_schedule(self, record: ScheduleRecord, *,
                              next_check: float | None) -> tuple[ScheduleRecord, bool]:
        """Insert the schedule unless its id is taken (see ``ScheduleStore``)."""
        key = (record.tenant, record.schedule_id)
        row = self._schedules.get(key)
        if row is not None:
            return row.record, False
        self._schedules[key] = ScheduleRow(record, next_check)
        return record, True

    async def get_schedule(self, tenant: str, schedule_id: str) -> ScheduleRecord | None:
        """The schedule, or None."""
        row = self._schedules.get((tenant, schedule_id))
        return None if row is None else row.record

    async def list_schedules(self, tenant: str | None = None, *,
                             limit: int = 100) -> list[ScheduleRecord]:
        """Schedules by tenant and id; all tenants when ``tenant`` is None."""
        keys = sorted(k for k in self._schedules if tenant is None or k[0] == tenant)
        return [self._schedules[k].record for k in keys[:limit]]

    async def update_schedule(self, record: ScheduleRecord, *, next_check: float | None,
                              owner: str | None = None, release: bool = True) -> bool:
        """Compare-and-set on the revision (and the lease, with ``owner``)."""
        row = self._schedules.get((record.tenant, record.schedule_id))
        if row is None or row.record.revision != record.revision - 1:
            return False
        if owner is not None:
            if row.owner != owner:
                return False
            if release:
                row.owner, row.lease_until = None, 0.0
        row.record, row.next_check = record, next_check
        return True

    async def delete_schedule(self, tenant: str, schedule_id: str) -> bool:
        """Delete the schedule; False if there was none."""
        return self._schedules.pop((tenant, schedule_id), None) is not None

    async def claim_schedules(self, owner: str, *, lease: float, now: float, limit: int,
                              key: tuple[str, str] | None = None) -> list[ScheduleRecord]:
        """Lease due schedules no live lease holds (see ``ScheduleStore``)."""
        keys = [key] if key is not None else sorted(
            self._schedules, key=lambda k: self._schedules[k].next_check or 0.0)
        claimed: list[ScheduleRecord] = []
        for k in keys:
            row = self._schedules.get(k)
            if len(claimed) < limit and row is not None and row.claimable(now):
                row.owner, row.lease_until = owner, now + lease
                claimed.append(row.record)
        return claimed

    async def next_schedule_check(self) -> float | None:
        """The earliest time a schedule needs a scheduler."""
        return min(self._schedule_checks(), default=None)
