"""The memory store's schedules (a mixin of ``MemoryStore``)."""

from __future__ import annotations

from dataclasses import dataclass

from ._schedule_records import ScheduleRecord

__all__ = ["MemorySchedules"]


@dataclass
class _Row:
    record: ScheduleRecord
    next_check: float | None
    owner: str | None = None
    lease_until: float = 0.0

    def claimable(self, now: float) -> bool:
        return (self.next_check is not None and self.next_check <= now
                and (self.owner is None or self.lease_until <= now))


class MemorySchedules:
    """Schedules in a dict keyed by (tenant, schedule_id)."""

    _schedules: dict[tuple[str, str], _Row]

    async def create_schedule(self, record: ScheduleRecord, *,
                              next_check: float | None) -> tuple[ScheduleRecord, bool]:
        key = (record.tenant, record.schedule_id)
        row = self._schedules.get(key)
        if row is not None:
            return row.record, False
        self._schedules[key] = _Row(record, next_check)
        return record, True

    async def get_schedule(self, tenant: str, schedule_id: str) -> ScheduleRecord | None:
        row = self._schedules.get((tenant, schedule_id))
        return None if row is None else row.record

    async def list_schedules(self, tenant: str | None = None, *,
                             limit: int = 100) -> list[ScheduleRecord]:
        keys = sorted(k for k in self._schedules if tenant is None or k[0] == tenant)
        return [self._schedules[k].record for k in keys[:limit]]

    async def update_schedule(self, record: ScheduleRecord, *, next_check: float | None,
                              owner: str | None = None, release: bool = True) -> bool:
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
        return self._schedules.pop((tenant, schedule_id), None) is not None

    async def claim_schedules(self, owner: str, *, lease: float, now: float, limit: int,
                              key: tuple[str, str] | None = None) -> list[ScheduleRecord]:
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
        return min(self._schedule_checks(), default=None)

    def _schedule_checks(self) -> list[float]:
        return [row.next_check if row.owner is None else max(row.next_check, row.lease_until)
                for row in self._schedules.values() if row.next_check is not None]
